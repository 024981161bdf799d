"""The files mn_gym writes and reads back: data only, written atomically, checked on the way in.

Every file mn_gym writes is JSON, CSV, PNG/GIF or a weights-only torch file (tensors, numbers, strings, lists,
dicts). Torch files are read with `torch.load(weights_only=True)`, which refuses any other object, so loading
a file never runs code from it (a crafted pickle is refused, not executed). A finished run folder carries
`manifest.json`, the SHA-256 of each of its files, written when the run is published (`write_manifest`);
loading a file listed there checks it first (`check_file`), so a damaged or altered file is refused with a
message that names it instead of loading silently.

    save_tensors({"policy": policy.state_dict()}, folder / "checkpoint.pt")   # atomic
    write_manifest(folder)                                                    # when the run is finished
    state = load_tensors(folder / "checkpoint.pt")                            # checked, weights only
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

__all__ = ["MANIFEST", "BadFileError", "atomic", "check_file", "check_folder", "load_tensors", "record",
           "save_tensors", "sha256", "write_manifest"]

MANIFEST = "manifest.json"


class BadFileError(ValueError):
    """A file that mn_gym refuses to load: damaged, altered after publishing, or not data (code)."""


def sha256(path: Path) -> str:
    """The SHA-256 hex digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write; it replaces `path` only once the block has finished (and is
    removed if the block fails), so a crash or a full disk leaves the previous file whole."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def save_tensors(obj: Any, path: Path) -> None:
    """`torch.save` `obj` (tensors, numbers, strings, lists, dicts) to `path` atomically."""
    with atomic(path) as tmp:
        torch.save(obj, tmp)


def load_tensors(path: str | Path) -> Any:
    """What `save_tensors` wrote at `path`, on the CPU: checked against its folder's manifest (`check_file`)
    and read weights-only. Raises `FileNotFoundError` when missing, `BadFileError` when damaged or not data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    check_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (not data), RuntimeError / EOFError (truncated, not a torch file)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it holds Python objects other than tensors, numbers, strings, lists and dicts (code?)"
        raise BadFileError(f"refusing {path}: {reason}") from None


# ------------------------------------------------------------------------------------------ the manifest
def _read_manifest(folder: Path) -> dict[str, str] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        digests = json.loads(path.read_text())["sha256"]
        if not (isinstance(digests, dict) and all(isinstance(v, str) for v in digests.values())):
            raise TypeError("sha256 is not a mapping of file names to digests")
    except (ValueError, KeyError, TypeError) as exc:
        raise BadFileError(f"{path} is damaged ({exc}); the run folder cannot be checked") from None
    return digests


def write_manifest(folder: Path) -> None:
    """Write `folder/manifest.json`: the SHA-256 of every file under `folder` (relative POSIX paths)."""
    _write_manifest(folder, {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
                             if p.is_file() and p.name != MANIFEST})


def _write_manifest(folder: Path, digests: dict[str, str]) -> None:
    with atomic(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"sha256": digests}, indent=1) + "\n")


def record(path: Path) -> None:
    """Update the manifest entry of `path`, rewritten after its folder was published (no manifest: nothing)."""
    digests = _read_manifest(path.parent)
    if digests is not None:
        digests[path.name] = sha256(path)
        _write_manifest(path.parent, digests)


def check_file(path: Path, folder: Path | None = None) -> None:
    """Raise `BadFileError` unless `path` matches its entry in the manifest of `folder` (default: the file's
    own folder). A folder without a manifest (a run in progress) is not checked; a file missing from an
    existing manifest is refused."""
    folder = path.parent if folder is None else folder
    digests = _read_manifest(folder)
    if digests is not None:
        _compare(path, path.relative_to(folder).as_posix(), digests, folder)


def check_folder(folder: Path) -> None:
    """Raise `BadFileError` unless every file listed in `folder/manifest.json` is there and matches."""
    digests = _read_manifest(folder) or {}
    for name in digests:
        _compare(folder / name, name, digests, folder)


def _compare(path: Path, name: str, digests: dict[str, str], folder: Path) -> None:
    if name not in digests:
        raise BadFileError(f"refusing {path}: it is not in {folder / MANIFEST} (added after the run was "
                           "published)")
    if not path.is_file():
        raise BadFileError(f"{path} is missing (listed in {folder / MANIFEST})")
    if sha256(path) != digests[name]:
        raise BadFileError(f"refusing {path}: it is damaged or was altered (its SHA-256 differs from "
                           f"{folder / MANIFEST})")
