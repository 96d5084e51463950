"""Errors that end a command with one clear line instead of a traceback."""

from pathlib import Path
from typing import Any

import orjson


class StartupError(RuntimeError):
    """The service cannot start or a command cannot run; the message says why, in one line."""


def load_json_file(setting: str, path: Path) -> Any:
    """The JSON of a file a setting names (TRUSTED_DOCUMENTS_FILE, ...); StartupError naming
    the setting and the file when it cannot be read."""
    try:
        return orjson.loads(path.read_bytes())
    except OSError as error:
        raise StartupError(f"{setting} {path}: {error.strerror}") from None
    except orjson.JSONDecodeError:
        raise StartupError(f"{setting} {path}: not valid JSON") from None
