"""Log a leaderboard's tables to W&B, one ``wandb.Table`` per table."""

from __future__ import annotations

from lightning_checkerboard.leaderboard.aggregate import METRICS, Leaderboard

__all__ = ["log_to_wandb"]


def log_to_wandb(board: Leaderboard, project: str, entity: str | None = None, timeout: float = 3.0) -> str:
    """Log every table as a ``wandb.Table`` to ``entity/project`` when W&B is online.

    Returns:
        A one-line note: where the tables went, or why they were not logged (offline or
        unreachable W&B logs nothing: a leaderboard run in an offline folder helps nobody).
    """
    from lightning_checkerboard.loggers import choose_wandb_mode

    mode, reason = choose_wandb_mode(timeout)
    if mode != "online":
        return f"W&B tables: not logged, W&B is {mode} ({reason})"
    import wandb

    columns = ["rank", "learned", "upsampler", "n", "seeds", *(f"{key} mean" for key, _, _ in METRICS),
               *(f"{key} std" for key, _, _ in METRICS)]
    run = wandb.init(project=project, entity=entity, job_type="leaderboard", name="leaderboard")
    try:
        for table in board.tables:
            data = []
            for row in table.rows:
                stats = [row.metrics[key] for key, _, _ in METRICS]
                data.append([row.rank, row.learned, row.label, row.n, " ".join(map(str, row.seeds)),
                             *(None if s is None else s.mean for s in stats),
                             *(None if s is None or s.std is None else s.std for s in stats)])
            run.log({f"leaderboard/{table.key}": wandb.Table(columns=columns, data=data)})
        url = run.url
    finally:
        run.finish()
    return f"W&B tables: {len(board.tables)} table(s) logged to {url}"
