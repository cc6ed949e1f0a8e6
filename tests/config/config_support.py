"""Values shared by the config tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

SECRET = "s3cr3t-Value_xyz"
TOKEN = f"machine_m1:worker_w1:secret_{SECRET}"


def entry(worker: str = "w1", **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "token": f"machine_m1:worker_{worker}:secret_{SECRET}",
        "working_directory": "project",
        "convex_url": "https://happy-otter-123.convex.cloud",
    }
    data.update(overrides)
    return data
