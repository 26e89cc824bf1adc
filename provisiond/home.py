"""The home directory and its files, private to the user provisiond runs as.

``provisiond init`` makes the home 0700 and the SQLite database, the secret key and
``provisiond.yaml`` 0600: the config may hold SMTP and webhook secrets, the database holds
customers' data and encrypted credentials. Files that already exist are tightened, not
replaced. A database URL is printed with its password masked.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

from provisiond import config, crypto


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (made, or tightened when it exists)."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """``path`` as a file only its owner can read: an empty one made 0600, or one tightened."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        os.chmod(path, 0o600)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for PostgreSQL or in-memory)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):]
    return Path(path) if path and path != ":memory:" else None


def masked_url(url: str) -> str:
    """``url`` fit to print: a password in it (``user:PASSWORD@`` or ``?password=``) masked."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:{crypto.MASK}@{host}"
    query = urllib.parse.urlencode([(k, crypto.MASK if k == "password" else v)
                                    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)],
                                   safe="*")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def init(settings: config.Settings) -> bool:
    """Make (or tighten) the home, its secret key, config file and SQLite database file.

    Returns True when a new secret key was made.
    """
    home = private_dir(settings.home)
    made_key = crypto.create_key_file(settings.secret_key_file)
    config_file = home / "provisiond.yaml"
    if not config_file.exists():
        private_file(config_file)
        shutil.copyfile(config.bundled_dir("config") / "provisiond.yaml", config_file)
    private_file(config_file)
    database = sqlite_file(settings.database_url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        private_file(database)  # SQLite gives its -wal and -shm files the database's mode
    return made_key
