"""audit and its command line: one row per site, deconv reads clearly higher than nearest_conv."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from lightning_checkerboard import audit, fuse_resize_conv
from lightning_checkerboard.adapt import AuditReport
from lightning_checkerboard.audit import main
from lightning_checkerboard.models.dcgan import DCGANGenerator


def _report(upsampler: str) -> AuditReport:
    torch.manual_seed(0)
    return audit(DCGANGenerator(upsampler, image_size=32, base_channels=16), torch.randn(8, 100, 1, 1))


def test_dcgan_deconv_sites_score_clearly_higher_than_nearest_conv_sites():
    deconv, nearest = _report("deconv"), _report("nearest_conv")
    assert [row.path for row in deconv.rows] == [row.path for row in nearest.rows] == [
        "stages.0.0", "stages.1.0", "stages.2.0"]
    assert [(r.kind, r.kernel, r.stride, r.overlap, r.fusable) for r in deconv.rows] == [
        ("transposed_conv", 4, 2, 1.0, "no")] * 3
    assert [(r.kind, r.fusable) for r in nearest.rows] == [("resize_conv", "fused")] * 3
    for d, n in zip(deconv.rows, nearest.rows):
        assert d.output_shape == n.output_shape
        assert n.score == 0.0 and n.upper < 0.05
        assert d.score > 0.2 and d.upper >= d.score
        assert d.score > n.upper + 0.15


def test_uneven_overlap_and_fusable_sites_are_reported():
    model = nn.Sequential(
        nn.ConvTranspose2d(4, 4, 3, 2, 1, output_padding=1), nn.Upsample(scale_factor=2),
        nn.ReflectionPad2d(1), nn.Conv2d(4, 4, 3), nn.Upsample(scale_factor=3), nn.Conv2d(4, 2, 3, padding=1),
    )
    report = audit(model, torch.randn(2, 4, 8, 8))
    assert [(r.path, r.overlap, r.fusable) for r in report.rows] == [("0", 4.0, "no"), ("3", 1.0, "yes"),
                                                                     ("5", 1.0, "yes")]
    assert report.rows[2].score is None and "not a power of two" in report.rows[2].note
    assert [r.path for r in audit(fuse_resize_conv(model), torch.randn(1, 4, 8, 8)).rows if r.fusable == "fused"] == [
        "3", "5"]


def test_small_maps_and_sites_that_do_not_run_have_no_score():
    model = nn.ModuleDict({"used": nn.ConvTranspose2d(2, 2, 4, 2, 1), "unused": nn.ConvTranspose2d(2, 2, 4, 2, 1)})
    model.forward = lambda x: model["used"](x)
    report = audit(model, torch.randn(1, 2, 2, 2))
    assert [(r.path, r.score, r.output_shape) for r in report.rows] == [("used", None, (1, 2, 4, 4)),
                                                                        ("unused", None, None)]
    assert "too small" in report.rows[0].note and "did not run" in report.rows[1].note


def test_report_prints_a_table_and_converts_to_json():
    report = _report("deconv_k3")
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == "DCGANGenerator on input 8×100×1×1: 3 upsampling site(s)"
    assert lines[1].split()[:4] == ["site", "kind", "kernel", "stride"] and "95% upper" in lines[1]
    assert lines[3].split()[:6] == ["stages.0.0", "transposed_conv", "3", "2", "4.00", "no"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["input_shape"] == [8, 100, 1, 1] and len(data["rows"]) == len(report) == 3
    assert data["rows"][2]["output_shape"] == [8, 3, 32, 32]
    assert data["rows"][0]["score"] == report.rows[0].score


def test_audit_leaves_no_hooks_or_statistics_behind_and_checks_its_arguments():
    model = DCGANGenerator("deconv", image_size=8, base_channels=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    audit(model, torch.randn(2, 100, 1, 1))
    assert not any(m._forward_hooks for m in model.modules())
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm buffers too
    with pytest.raises(TypeError, match="example_input must be a torch.Tensor; got list"):
        audit(model, [1.0])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got str"):
        audit("model", torch.zeros(1))


def test_cli_prints_the_table(capsys):
    assert main(["lightning_checkerboard.models.dcgan:DCGANGenerator", "--input-shape", "2,100,1,1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DCGANGenerator on input 2×100×1×1: 4 upsampling site(s)")
    assert "stages.3.0" in out


def test_cli_json(capsys):
    assert main(["lightning_checkerboard.models.dcgan:DCGANGenerator", "--input-shape", "1,100,1,1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lightning_checkerboard.models.dcgan", "--input-shape", "1,100,1,1"], "package.module:factory"),
        (["no_such_module_xyz:f", "--input-shape", "1,100,1,1"], "cannot import 'no_such_module_xyz'"),
        (["lightning_checkerboard.models.dcgan:Nope", "--input-shape", "1,100,1,1"], "has no attribute 'Nope'"),
        (["lightning_checkerboard.models.dcgan:SUPPORTED_SIZES", "--input-shape", "1,100,1,1"], "got tuple"),
        (["lightning_checkerboard.models.dcgan:num_stages_for", "--input-shape", "1,100,1,1"],
         "calling 'lightning_checkerboard.models.dcgan:num_stages_for' failed: TypeError"),
        (["lightning_checkerboard.models.dcgan:DCGANGenerator", "--input-shape", "1,x"], "got '1,x'"),
        (["lightning_checkerboard.models.dcgan:DCGANGenerator", "--input-shape", "1,0,1,1"], "positive integers"),
        (["lightning_checkerboard.models.dcgan:DCGANGenerator", "--input-shape", "1,3,8,8"],
         "the model failed on an input of shape (1, 3, 8, 8)"),
    ],
)
def test_cli_bad_input_is_one_error_line_and_exit_2(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_the_package_name_audit_stays_callable_after_the_command_module_is_imported():
    import lightning_checkerboard
    import lightning_checkerboard.audit as command

    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 4, 2, 1))
    assert len(lightning_checkerboard.audit(model, torch.randn(1, 2, 8, 8))) == 1
    assert len(command(model, torch.randn(1, 2, 8, 8))) == 1


def test_python_dash_m_runs_without_warnings():
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "lightning_checkerboard.audit", "no.such:f", "--input-shape", "1"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "error: cannot import 'no.such': No module named 'no'\n"
