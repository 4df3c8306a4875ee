"""Logger choice: W&B online only when logged in and reachable; never a long hang."""

from __future__ import annotations

import socket
import time

import pytest

from lightning_checkerboard.loggers import build_logger, choose_wandb_mode, wandb_server_problem, wandb_server_reachable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


@pytest.fixture
def online_env(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))


def test_key_with_unreachable_server_falls_back_to_offline_at_once(online_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    start = time.perf_counter()
    mode, reason = choose_wandb_mode()
    assert mode == "offline"
    assert "refused the connection" in reason
    assert time.perf_counter() - start < 5


def test_no_key_means_offline(online_env, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert choose_wandb_mode() == ("offline", "no W&B API key configured (run `wandb login` to log online)")


def test_key_and_reachable_server_means_online(online_env, monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert choose_wandb_mode()[0] == "online"


@pytest.mark.parametrize(("env", "mode"), [("offline", "offline"), ("disabled", "disabled")])
def test_explicit_wandb_mode_is_respected(monkeypatch, env, mode):
    monkeypatch.setenv("WANDB_MODE", env)
    assert choose_wandb_mode()[0] == mode


def test_reachability_of_a_url_without_host_is_false():
    assert wandb_server_reachable("not a url") is False
    assert wandb_server_problem("not a url") == "the W&B server not a url is not a URL with a host name"


@pytest.mark.parametrize(("error", "reason"), [
    (socket.gaierror(-2, "Name or service not known"),
     "the W&B server https://api.example.org cannot be found: its name api.example.org does not resolve "
     "(Name or service not known; no network, or no DNS)"),
    (TimeoutError("timed out"), "the W&B server https://api.example.org did not answer within 2 s"),
    (ConnectionRefusedError(111, "Connection refused"),
     "the W&B server https://api.example.org refused the connection (nothing listens on port 443)"),
    (OSError(101, "Network is unreachable"), "the W&B server https://api.example.org cannot be reached "
                                             "(Network is unreachable)"),
])
def test_an_unreachable_server_is_told_apart_from_a_silent_one(monkeypatch, error, reason):
    """A DNS failure or a refused connection is immediate: only a silent server is reported as a timeout."""
    def connect(address, timeout):
        assert address == ("api.example.org", 443) and timeout == 2
        raise error

    monkeypatch.setattr(socket, "create_connection", connect)
    assert wandb_server_problem("https://api.example.org", timeout=2) == reason
    assert wandb_server_reachable("https://api.example.org", timeout=2) is False


def test_build_logger_kinds(tmp_path):
    assert build_logger("none", tmp_path, run_name="r").logger is False
    csv = build_logger("csv", tmp_path, run_name="r")
    csv.logger.log_metrics({"a": 1.0}, step=0)
    csv.logger.save()
    assert (tmp_path / "csv" / "metrics.csv").read_text().startswith("a,step")
    with pytest.raises(ValueError, match="logger must be one of wandb, csv, tensorboard, none; got 'mlflow'"):
        build_logger("mlflow", tmp_path, run_name="r")


def test_offline_wandb_logger_notes_how_to_sync(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    logging_setup = build_logger("wandb", tmp_path, run_name="r")
    assert logging_setup.wandb_mode == "offline"
    assert f"wandb sync {tmp_path / 'wandb'}/offline-run-*" in logging_setup.note

