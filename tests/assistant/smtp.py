"""Real mail servers on loopback for the assistant's tests: SMTP (aiosmtpd, in a thread) that keeps what it
receives, with the settings that point Django at it; and IMAP (Dovecot, a subprocess with a temporary
configuration and a maildir that the test delivers into)."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, ClassVar, Iterator

from aiosmtpd.controller import Controller

from tests import tools
from tests.net import free_port


@dataclass
class Received:
    """One message as the server got it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """aiosmtpd handler: refuses the addresses in `refuse` with 550 and defers those in `defer` with 450
    (greylisting), rejects every message's data with 554 while `reject_data`; stores every accepted message."""

    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    reject_data: bool = False
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox here"
        if address.lower() in self.defer:
            return "450 4.2.0 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_data:
            return "554 5.7.1 Message refused as spam"
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[int, Mailbox]]:
    """Serve SMTP on 127.0.0.1 (a free port unless given) for the duration; yields the port and the mailbox."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield controller.port, box
    finally:
        controller.stop()


def point_django_at(settings: Any, port: int) -> None:
    """Django's SMTP backend to 127.0.0.1:port, plain (no TLS, no login), with a short timeout."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "assistant@jobconsole.test"


# IMAP: Dovecot on loopback --------------------------------------------------------------------------

DOVECOT_CONF = """\
base_dir = {run}
state_dir = {state}
log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{mail}/%u
first_valid_uid = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot serving one user's maildir over plain IMAP on 127.0.0.1:port."""

    USER: ClassVar[str] = "tester"
    PASSWORD: ClassVar[str] = "secret"
    maildir: Path
    port: int
    #: uid and gid that mail files must belong to (Dovecot's mail user), or None to leave them as written.
    owner: tuple[int, int] | None
    _count: int = 0

    def deliver(self, raw: bytes, *, seen: bool = False) -> None:
        """Deliver as an MTA does: write under tmp/, then rename into new/ (or cur/ with the Seen flag)."""
        self._count += 1
        name = f"{time.time():.0f}.M{self._count}P{os.getpid()}.test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        if self.owner:
            os.chown(tmp, *self.owner)
        tmp.rename(self.maildir / "cur" / f"{name}:2,S" if seen else self.maildir / "new" / name)

    def clear(self) -> None:
        """Remove every message (Dovecot notices on its next scan)."""
        for sub in ("new", "cur"):
            for path in (self.maildir / sub).iterdir():
                path.unlink()


def dovecot_binary() -> str:
    """Dovecot's path (Debian puts it in /usr/sbin, which a plain user's PATH may lack); skips or fails the test without it."""
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None)
    if found is None:
        tools.require("dovecot", why="the inbox sync tests run a real IMAP server (Debian: dovecot-imapd)")
        raise AssertionError("unreachable: require() skips or fails")
    return found


@contextmanager
def dovecot_server() -> Iterator[Dovecot]:
    """Run `dovecot -F` with a temporary configuration (passwd-file auth, a maildir) until the end.

    Its folder is made here, not under pytest's tmp_path: that is private to the test user (0700), and as
    root Dovecot reads its files as its own users. The path is short because Dovecot's unix sockets
    live in it (a 108-byte limit)."""
    binary = dovecot_binary()
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    root.chmod(0o755)
    try:
        with _dovecot(binary, root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _dovecot(binary: str, root: Path) -> Iterator[Dovecot]:
    run, mail, port = root / "run", root / "mail", free_port()
    maildir = mail / Dovecot.USER
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (root / "passwd").write_text(f"{Dovecot.USER}:{{PLAIN}}{Dovecot.PASSWORD}\n")
    if os.geteuid() == 0:  # Dovecot will not run its processes as root: its package's users do
        mail_user = pwd.getpwnam("dovecot")
        internal, login, owner = "dovecot", "dovenull", (mail_user.pw_uid, mail_user.pw_gid)
        for path in (mail, maildir, *(maildir / s for s in ("cur", "new", "tmp"))):
            os.chown(path, *owner)
    else:  # as a plain user, every process runs as that user
        internal = login = pwd.getpwuid(os.geteuid()).pw_name
        owner = None
    conf = root / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(
        run=run, state=root / "state", log=root / "dovecot.log", mail=mail, passwd=root / "passwd", port=port,
        internal_user=internal, internal_group=grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name, login_user=login,
        uid=owner[0] if owner else os.geteuid(), gid=owner[1] if owner else os.getegid(),
    ))
    (root / "state").mkdir()
    run.mkdir()
    proc = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, root / "dovecot.log")
        yield Dovecot(maildir=maildir, port=port, owner=owner)
    finally:
        tools.stop(proc)


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    output = proc.stdout.read().decode(errors="replace") if proc.poll() is not None and proc.stdout else ""
    text = log.read_text(errors="replace") if log.exists() else ""
    raise AssertionError(f"dovecot did not listen on {port} (exit {proc.poll()}):\n{output}\n{text[-3000:]}")
