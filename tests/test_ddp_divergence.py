"""Under DDP, a measurement that diverges in one process stops every process, and none is left waiting."""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = '''
import json, sys
import torch
from lightning_checkerboard._lightning import pl
from lightning_checkerboard.callbacks import ArtifactMetrics

class Generator(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 3 * 16 * 16), torch.nn.Unflatten(1, (3, 16, 16)),
                                       torch.nn.Sigmoid())

    def generate(self, num, generator):
        images = self.net(torch.randn(num, 8, generator=generator).to(self.device))
        # Only the second process's share comes out non-finite, and only once training has begun.
        if self.trainer.global_rank == 1 and self.trainer.global_step > 0:
            images = images * float("nan")
        return images

    def training_step(self, batch, batch_idx):
        return self.net(torch.randn(2, 8, device=self.device)).mean() * 0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

if __name__ == "__main__":
    out = sys.argv[1]
    torch.manual_seed(0)
    model, real = Generator(), torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    callback = ArtifactMetrics(2, 12, batch_size=4, gradient=False, sample_fn=model.generate, real_images=real)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=6, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, callbacks=[callback])
    trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(real), batch_size=4))
    with open(f"{out}.{trainer.global_rank}", "w") as handle:
        json.dump({"diverged": getattr(model, "diverged", None), "step": trainer.global_step}, handle)
'''


def test_a_share_that_diverges_in_one_process_stops_both_without_a_hang(tmp_path):
    script = tmp_path / "ddp_diverge.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "state"
    done = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    states = [json.loads((tmp_path / f"state.{rank}").read_text()) for rank in (0, 1)]
    # Both processes stop at the first measurement after step 0, the one that saw finite images included.
    assert states[0]["step"] == states[1]["step"] == 2
    assert "another process" in states[0]["diverged"]
    assert "non-finite" in states[1]["diverged"] and "another process" not in states[1]["diverged"]
