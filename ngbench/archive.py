"""One platform's results as a portable archive: measure on a GPU node, import into the checkout that draws
the figures. ``ngbench archive export --platform NAME OUT.tar.gz`` packs the platform's raw traces, latency
records, op tables, per-run shares, energy records and measured roofs with a manifest of SHA-256 checksums; ``ngbench
archive import IN.tar.gz`` verifies and unpacks it, refusing a platform that exists here with different
content. Imported runs join the figures as copied-in runs (the workflow finds their ``meta.json``) and
nothing of theirs reruns: files are dated in the order the workflow makes them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ngbench.errors import InputError

FORMAT = "ngbench.platform-archive/1"
MANIFEST = "manifest.json"
# what an archive holds, in the order the workflow makes it (import dates files in this order)
KINDS = ("traces", "latency", "energy", "ops", "shares")
ROOFS = "platform"  # results/platform/<platform>.json: the platform's measured roofs (the horizon), one file
NAME_PATTERN = "letters, digits, '.', '_', '-', starting with a letter or digit"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_name(platform: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", platform):
        raise InputError(f"platform {platform!r}: expected a name of {NAME_PATTERN}")


def platform_files(results: Path, platform: str) -> list[Path]:
    """Every file of one platform under ``results/<kind>/<platform>/``, in :data:`KINDS` order, then its
    roofs ``results/platform/<platform>.json`` when measured."""
    files: list[Path] = []
    for kind in KINDS:
        root = results / kind / platform
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.is_file())
    roofs = _roofs(results, platform)
    return files + ([roofs] if roofs.is_file() else [])


def _roofs(results: Path, platform: str) -> Path:
    return results / ROOFS / f"{platform}.json"


def export(platform: str, out: str | Path, *, results: str | Path = "results") -> dict[str, Any]:
    """Pack one platform; returns the manifest."""
    _check_name(platform)
    results, out = Path(results), Path(out)
    files = platform_files(results, platform)
    if not any(f.name == "meta.json" for f in files):
        raise InputError(f"{results}/traces/{platform}: no run of platform {platform!r} here (no meta.json)")
    manifest = {
        "format": FORMAT,
        "platform": platform,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [
            {"path": f.relative_to(results).as_posix(), "bytes": f.stat().st_size, "sha256": _sha256(f)} for f in files
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        data = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
        for f in files:
            tar.add(f, arcname=f.relative_to(results).as_posix(), recursive=False)
    partial.replace(out)  # never a half-written archive under the final name
    return manifest


def _read_manifest(tar: tarfile.TarFile, source: Path) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        manifest = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    except KeyError:
        raise InputError(f"{source}: no {MANIFEST}; expected an archive made by `ngbench archive export`") from None
    except ValueError as exc:
        raise InputError(f"{source}: {MANIFEST} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{source}: {MANIFEST} format is {manifest.get('format')!r}, expected {FORMAT!r}")
    _check_name(str(manifest.get("platform")))
    return manifest


def _safe_path(rel: str, platform: str, source: Path) -> PurePosixPath:
    path = PurePosixPath(rel)
    if path.parts == (ROOFS, f"{platform}.json"):
        return path
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 3:
        raise InputError(f"{source}: member {rel!r} would leave results/; refused")
    if path.parts[0] not in KINDS or path.parts[1] != platform:
        raise InputError(f"{source}: member {rel!r} is not under results/<{'|'.join(KINDS)}>/{platform}/")
    return path


def import_(source: str | Path, *, results: str | Path = "results") -> dict[str, Any]:
    """Verify and unpack an archive; returns ``{"platform", "files", "already_here"}``."""
    source, results = Path(source), Path(results)
    try:
        return _import(source, results)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise InputError(
            f"{source}: cannot read the archive ({type(exc).__name__}: {exc}); expected a .tar.gz from "
            "`ngbench archive export`"
        ) from None


def _import(source: Path, results: Path) -> dict[str, Any]:
    with tarfile.open(source, "r:gz") as tar:
        manifest = _read_manifest(tar, source)
        platform = manifest["platform"]
        listed = {e["path"]: e for e in manifest["files"]}
        members = {m.name: m for m in tar.getmembers() if m.name != MANIFEST}
        for name, member in members.items():
            _safe_path(name, platform, source)
            if not member.isfile():
                raise InputError(f"{source}: member {name!r} is not a regular file; refused")
        if set(members) != set(listed):
            extra, missing = sorted(set(members) - set(listed)), sorted(set(listed) - set(members))
            raise InputError(f"{source}: archive and manifest disagree (unlisted: {extra[:3]}, missing: {missing[:3]})")
        here = {f.relative_to(results).as_posix(): f for f in platform_files(results, platform)}
        if here:
            differ = sorted(p for p, e in listed.items() if p not in here or _sha256(here[p]) != e["sha256"])
            differ += sorted(p for p in here if p not in listed)
            if differ:
                raise InputError(
                    f"{source}: platform {platform!r} already exists under {results} with different content "
                    f"({len(differ)} files differ, e.g. {differ[0]}); rename or remove it first"
                )
            return {"platform": platform, "files": len(listed), "already_here": True}
        staging = results / f".import-{platform}-{os.getpid()}"
        try:
            for name, member in members.items():
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as dst:  # type: ignore[union-attr]
                    while block := src.read(1 << 20):
                        dst.write(block)
                if _sha256(target) != listed[name]["sha256"]:
                    raise InputError(f"{source}: {name}: checksum does not match the manifest (damaged archive)")
            # date files in the order the workflow makes them, so none looks older than its input
            start = time.time()
            for rank, kind in enumerate(KINDS):
                for f in sorted((staging / kind).rglob("*")) if (staging / kind).is_dir() else []:
                    os.utime(f, (start + rank, start + rank))
            for kind in KINDS:
                if (staging / kind / platform).is_dir():
                    (results / kind).mkdir(parents=True, exist_ok=True)
                    (staging / kind / platform).rename(results / kind / platform)
            if _roofs(staging, platform).is_file():
                os.utime(_roofs(staging, platform), (start, start))  # measured before any run is normalized
                _roofs(results, platform).parent.mkdir(parents=True, exist_ok=True)
                _roofs(staging, platform).rename(_roofs(results, platform))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {"platform": platform, "files": len(listed), "already_here": False}
