"""Platform archives: export one platform's results, import them into another checkout, refuse what would
overwrite different results or leave results/."""

import hashlib
import io
import json
import os
import tarfile

import pytest
from conftest import run_ngbench

from ngbench import archive
from ngbench.errors import InputError

RUN = "cpu-a/torch/tiny/bs1"


def make_results(root, platform="cpu-a", payload=b"op table bytes"):
    """A platform's results as the workflow lays them out (contents are opaque to the archive)."""
    run = RUN.replace("cpu-a", platform)
    files = {
        f"traces/{run}/meta.json": json.dumps({"platform": platform, "status": "ok"}).encode(),
        f"traces/{run}/trace.0.json.gz": b"\x1f\x8b fake trace",
        f"latency/{run}.json": b"{}",
        f"ops/{run}.parquet": payload,
        f"shares/{run}.parquet": b"shares",
        f"shares/{run}.unknown.csv": b"backend,op\n",
        f"platform/{platform}.json": b'{"status": "ok"}',  # the platform's measured roofs
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "ops" / "other-platform").mkdir(parents=True)  # another platform: never packed
    (root / "ops" / "other-platform" / "x.parquet").write_bytes(b"not mine")
    (root / "platform" / "other-platform.json").write_bytes(b"not mine either")
    return files


def test_export_then_import_gives_the_same_files_dated_in_workflow_order(tmp_path):
    files = make_results(tmp_path / "a")
    manifest = archive.export("cpu-a", tmp_path / "cpu-a.tar.gz", results=tmp_path / "a")
    assert {f["path"] for f in manifest["files"]} == set(files)  # nothing of other-platform
    assert all(f["sha256"] == hashlib.sha256(files[f["path"]]).hexdigest() for f in manifest["files"])
    done = archive.import_(tmp_path / "cpu-a.tar.gz", results=tmp_path / "b")
    assert done == {"platform": "cpu-a", "files": len(files), "already_here": False}
    for rel, data in files.items():
        assert (tmp_path / "b" / rel).read_bytes() == data
    mtime = {rel.split("/")[0]: os.stat(tmp_path / "b" / rel).st_mtime for rel in files}
    assert mtime["traces"] < mtime["ops"] < mtime["shares"]  # no output older than its input: nothing reruns
    assert mtime["platform"] <= mtime["traces"]  # the roofs: older than every op table the horizon reads
    assert not list((tmp_path / "b").glob(".import-*"))  # the staging folder is gone
    # importing the same archive again changes nothing
    assert archive.import_(tmp_path / "cpu-a.tar.gz", results=tmp_path / "b")["already_here"] is True


def test_a_platform_with_different_content_is_refused(tmp_path):
    make_results(tmp_path / "a")
    archive.export("cpu-a", tmp_path / "cpu-a.tar.gz", results=tmp_path / "a")
    make_results(tmp_path / "b", payload=b"another machine's op table")
    with pytest.raises(InputError, match=r"platform 'cpu-a' already exists .* different content .*ops/cpu-a"):
        archive.import_(tmp_path / "cpu-a.tar.gz", results=tmp_path / "b")
    assert (tmp_path / "b" / f"ops/{RUN}.parquet").read_bytes() == b"another machine's op table"  # untouched


def _tar_with(tmp_path, manifest, members):
    path = tmp_path / "crafted.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), *members]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "member, message",
    [
        ("traces/cpu-a/../../../evil.txt", "would leave results/"),
        ("/etc/evil.txt", "would leave results/"),
        ("traces/cpu-b/x/meta.json", "is not under results/"),
        ("cache/cpu-a/x.bin", "is not under results/"),
    ],
)
def test_members_that_would_escape_or_stray_are_refused(tmp_path, member, message):
    manifest = {"format": archive.FORMAT, "platform": "cpu-a", "files": [{"path": member, "sha256": "0", "bytes": 1}]}
    path = _tar_with(tmp_path, manifest, [(member, b"x")])
    with pytest.raises(InputError, match=message):
        archive.import_(path, results=tmp_path / "r")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "r").exists()


def test_damaged_archives_are_one_line_errors(tmp_path):
    make_results(tmp_path / "a")
    good = tmp_path / "cpu-a.tar.gz"
    archive.export("cpu-a", good, results=tmp_path / "a")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read the archive"):
        archive.import_(truncated, results=tmp_path / "r")
    not_ours = _tar_with(tmp_path, {"format": "something/else", "platform": "cpu-a"}, [])
    with pytest.raises(InputError, match="expected 'ngbench.platform-archive/1'"):
        archive.import_(not_ours, results=tmp_path / "r")
    lying = _tar_with(
        tmp_path,
        {"format": archive.FORMAT, "platform": "cpu-a", "files": [{"path": f"ops/{RUN}.parquet", "sha256": "0"}]},
        [(f"ops/{RUN}.parquet", b"data")],
    )
    with pytest.raises(InputError, match="checksum does not match"):
        archive.import_(lying, results=tmp_path / "r")
    assert not (tmp_path / "r" / "ops").exists()  # nothing half-imported


def test_the_command_line(tmp_path):
    make_results(tmp_path / "a")
    out = tmp_path / "cpu-a.tar.gz"
    res = run_ngbench("archive", "export", str(out), "--platform", "cpu-a", "--results", "a", cwd=tmp_path)
    assert res.returncode == 0 and "7 files" in res.stdout, res.stderr  # make_results: 6 run files + the roofs
    res = run_ngbench("archive", "import", str(out), "--results", str(tmp_path / "b"), cwd=tmp_path)
    assert res.returncode == 0 and "imported" in res.stdout, res.stderr
    res = run_ngbench("archive", "export", str(out), "--platform", "../x", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "platform '../x'" in res.stderr
