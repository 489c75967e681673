"""Whisper transcription on the job engine (seed 1): audio in, transcript out."""
