from django.urls import path

from files import apis

urlpatterns = [
    path("api/files", apis.FileListApi.as_view(), name="files"),
    path("api/files/upload-async", apis.FileUploadAsyncApi.as_view(), name="files-upload-async"),
    path("api/files/upload", apis.FileUploadApi.as_view(), name="files-upload"),
    path("api/files/<uuid:file_id>", apis.FileDetailApi.as_view(), name="file"),
    path("api/files/<uuid:file_id>/download", apis.FileDownloadApi.as_view(), name="file-download"),
    path("api/files/<uuid:file_id>/process", apis.FileProcessApi.as_view(), name="file-process"),
]
