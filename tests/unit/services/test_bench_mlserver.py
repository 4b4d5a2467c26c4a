"""MLServer as the bench's baseline: what is written for it, what is sent to it, and its
virtualenv's install-once logic. MLServer itself is never installed or run here."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from services.bench import MLServerUnavailableError
from services.bench import _mlserver_env as env
from services.bench._gateway import gateway_body, parse_token
from services.bench._mlserver import (
    KafkaMode,
    ServerPorts,
    kafka_request,
    mlserver_service,
    model_settings,
    oip_body,
    server_settings,
    write_repository,
)
from services.bench._sklearn import FEATURES, feature_rows, fit_artifact
from services.bench._stack import SCHEMA

ROW = [0.5, -1.25, 2.0, 0.0, 1e-3, -3.5, 0.25, 7.0, -0.125, 1.0]


def test_oip_body_is_one_row_as_a_1_by_10_fp64_tensor() -> None:
    body = json.loads(oip_body(ROW))
    (tensor,) = body["inputs"]
    assert tensor["shape"] == [1, 10] and tensor["datatype"] == "FP64"
    assert tensor["data"] == ROW
    assert set(body) == {"inputs"}  # outputs come from the model settings (predict_proba)


def test_gateway_body_names_the_same_values_by_feature() -> None:
    record = json.loads(gateway_body(ROW))
    assert list(record) == [f"x{i}" for i in range(10)] == list(FEATURES)
    assert list(record.values()) == ROW


def test_kafka_request_names_the_model_in_a_header_and_keys_by_id() -> None:
    key, value, headers = kafka_request("m42", ROW, "bench-sklearn")
    assert key == b"m42"
    assert headers == [("mlserver-model", b"bench-sklearn")]
    request = json.loads(value)
    assert request["id"] == "m42"
    assert request["inputs"] == json.loads(oip_body(ROW))["inputs"]


def test_model_settings_serve_predict_proba_from_model_joblib() -> None:
    settings = model_settings("bench-sklearn")
    assert settings["name"] == "bench-sklearn"
    assert settings["implementation"] == "mlserver_sklearn.SKLearnModel"
    assert settings["parameters"]["uri"] == "./model.joblib"
    assert settings["parameters"]["extra"] == {"predict_fn": "predict_proba"}


def test_server_settings_listen_on_loopback_without_metrics_or_access_log(
    tmp_path: Path,
) -> None:
    settings = server_settings(tmp_path, ServerPorts(18080, 18081), workers=0)
    assert (settings["host"], settings["http_port"], settings["grpc_port"]) == (
        "127.0.0.1", 18080, 18081,
    )  # fmt: skip
    assert settings["metrics_endpoint"] is None and settings["debug"] is False
    assert settings["parallel_workers"] == 0
    assert settings["kafka_enabled"] is False and "kafka_servers" not in settings
    assert Path(settings["metrics_dir"]).parent == tmp_path  # never in the caller's cwd
    assert Path(settings["environments_dir"]).parent == tmp_path


def test_server_settings_in_kafka_mode_name_broker_and_topics(tmp_path: Path) -> None:
    mode = KafkaMode("127.0.0.1:9092", "p.m.mlserver-in", "p.m.mlserver-out")
    settings = server_settings(tmp_path, ServerPorts(1, 2), workers=1, kafka=mode)
    assert settings["kafka_enabled"] is True
    assert settings["kafka_servers"] == "127.0.0.1:9092"
    assert (settings["kafka_topic_input"], settings["kafka_topic_output"]) == (
        "p.m.mlserver-in", "p.m.mlserver-out",
    )  # fmt: skip
    quiet = settings["logging_settings"]["loggers"]["mlserver.kafka"]
    assert quiet == {"level": "WARNING"}


def test_repository_holds_the_very_bytes_registered(tmp_path: Path) -> None:
    artifact = fit_artifact(train_rows=300)
    settings = server_settings(tmp_path, ServerPorts(1, 2), workers=1)
    write_repository(tmp_path, "bench-sklearn", artifact, settings)
    model_dir = tmp_path / "bench-sklearn"
    assert (model_dir / "model.joblib").read_bytes() == artifact
    assert json.loads((model_dir / "model-settings.json").read_text()) == model_settings(
        "bench-sklearn"
    )
    assert json.loads((tmp_path / "settings.json").read_text()) == settings


def test_the_artifact_is_a_logistic_regression_on_the_schema_features() -> None:
    model: Any = joblib.load(io.BytesIO(fit_artifact(train_rows=500)))
    assert type(model).__name__ == "LogisticRegression"
    assert model.n_features_in_ == len(SCHEMA["fields"]) == 10
    proba = model.predict_proba(np.array(feature_rows(4)))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert [str(c) for c in model.classes_] == ["False", "True"]


def test_mlserver_runs_without_this_process_python_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", "/work/main/.venv")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("MLSERVER_HTTP_PORT", "1")  # would override settings.json
    service = mlserver_service(tmp_path / "venv", tmp_path / "repo", tmp_path / "log")
    assert service.argv == [str(tmp_path / "venv/bin/mlserver"), "start", str(tmp_path / "repo")]
    assert not {"VIRTUAL_ENV", "PYTHONPATH", "MLSERVER_HTTP_PORT"} & set(service.env)
    assert service.env["PATH"].startswith(str(tmp_path / "venv/bin"))


def test_token_is_read_from_the_clients_create_output() -> None:
    assert parse_token("created client bench\ntoken=ms_live_abc-123\n") == "ms_live_abc-123"
    with pytest.raises(Exception, match="token"):
        parse_token("error: no such command")


def installed_venv(root: Path, wanted: list[str]) -> Path:
    venv = env.venv_dir(root)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "mlserver").write_text("#!/bin/sh\n")
    (venv / env.MARKER).write_text("\n".join(wanted) + "\n")
    return venv


def test_requirements_pin_mlserver_and_this_sklearn() -> None:
    wanted = env.requirements("1.5.2")
    assert wanted[:3] == ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "scikit-learn==1.5.2"]
    assert "uvloop<0.22" in wanted


def test_an_installed_environment_is_not_installed_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv = installed_venv(tmp_path, env.requirements())

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip ran although the marker matches")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert env.ensure_environment(tmp_path) == venv


def test_changed_requirements_reinstall(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installed_venv(tmp_path, ["mlserver==1.6.0"])
    (env.venv_dir(tmp_path) / "bin" / "python").write_text("")
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    venv = env.ensure_environment(tmp_path)
    assert [c[1:4] for c in calls] == [["-m", "pip", "install"]]  # the venv existed
    assert env.is_installed(venv, env.requirements())


def test_a_failed_install_says_why_and_leaves_no_marker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def failing_pip(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if "venv" in argv:
            (env.venv_dir(tmp_path) / "bin").mkdir(parents=True)
            return subprocess.CompletedProcess(argv, 0, "", "")
        return subprocess.CompletedProcess(argv, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(MLServerUnavailableError, match="No matching distribution"):
        env.ensure_environment(tmp_path)
    assert not (env.venv_dir(tmp_path) / env.MARKER).exists()


def test_cpu_of_a_live_process_is_read_and_grows() -> None:
    import os

    from services.bench._cpu import CpuMeter

    meter = CpuMeter({"me": os.getpid(), "gone": 2**22 + 7}).start()
    deadline = time.process_time() + 0.15
    while time.process_time() < deadline:
        pass
    used = meter.stop()
    assert used["gone"] is None
    assert used["me"] is not None and used["me"] > 0.0  # 15 ticks of 10 ms
    assert meter.per_request_ms(10)["gone"] is None
