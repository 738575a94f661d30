"""Shared fixtures: a real lab per test module, and helpers for real peers."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from smtplab import Lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(state_dir=tmp_path_factory.mktemp("lab")) as running:
        yield running


@pytest.fixture(scope="module")
def ca_context(lab: Lab) -> ssl.SSLContext:
    """What an outside client does: trust the lab CA from its exported PEM file."""
    return ssl.create_default_context(cafile=str(lab.ca.cert_path))
