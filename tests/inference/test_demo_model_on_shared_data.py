"""The bundled demo model through ``meddiag infer`` on every loadable scan in the shared data.

Each run ends with a mask on the input's own grid, or a one-line error saying the model does not
fit: for scans whose modality is known and is not CT, and for scans that say they show another
region than the chest (the real head CTs must be refused: the model once reported 14 "nodules"
in one). Nothing crashes or hangs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

from meddiag_desktop.cli import main
from meddiag_desktop.scans import discover

MODEL = "demo-lung-nodules"
HEAD_CTS = {"ct_philips_mixed_folder", "ct_ge_gantry_tilt"}
REFUSALS = ("is for CT scans", "is for the chest, but this scan is of the")


def every_loadable(sample_data: Path) -> list[tuple[Path, str | None]]:
    """(input path, series key or None) for each loadable series or volume file."""
    inputs: list[tuple[Path, str | None]] = []
    for folder in sorted((sample_data / "dicom").iterdir()):
        if folder.is_dir():
            dicom = [s for s in discover(folder) if s.loadable and s.kind.value != "image file"]
            inputs.extend((folder, s.key) for s in dicom)
    for path in sorted((sample_data / "volumes").rglob("*")):
        if path.is_file() and path.name.endswith((".nii.gz", ".nii", ".mha", ".nrrd")):
            series = discover(path)[0]
            if series.loadable:
                inputs.append((path, None))
    return inputs


@pytest.mark.slow
def test_demo_model_runs_or_refuses_clearly(sample_data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    inputs = every_loadable(sample_data)
    assert len(inputs) > 20
    problems, ran, refused = [], 0, 0
    refused_heads = set()
    for number, (path, key) in enumerate(inputs):
        out = tmp_path / f"run{number}"
        args = ["infer", str(path), "--model", MODEL, "--out", str(out), "--provider", "cpu"]
        if key:
            args += ["--series", key]
        code = main(args)
        err = capsys.readouterr().err
        if code == 2 and any(r in err for r in REFUSALS) and err.strip().count("\n") == 0:
            refused += 1
            if "is of the head" in err:
                refused_heads.add(path.name)
            continue
        if path.name in HEAD_CTS:
            problems.append(f"{path}: a head CT was not refused (exit {code})")
            continue
        if code != 0:
            problems.append(f"{path} {key or ''}: exit {code}: {err.strip()[-300:]}")
            continue
        mask = sitk.ReadImage(str(out / "mask.nii.gz"))
        source = sitk.ReadImage(str(path)) if key is None else None
        if source is not None and mask.GetSize() != source.GetSize()[:3]:
            problems.append(f"{path}: mask size {mask.GetSize()} vs input {source.GetSize()}")
        ran += 1
    assert not problems, "\n".join(problems)
    assert refused_heads == HEAD_CTS
    assert ran > 10 and refused > len(HEAD_CTS)
