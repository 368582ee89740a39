"""The users' file storage (openEO ``/files``): one folder per user, read by ``load_uploaded_files``."""

from terracube.files.store import FileStore, UserFiles

__all__ = ["FileStore", "UserFiles"]
