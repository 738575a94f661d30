"""Helpers for tests that talk to the lab with real peers."""

from __future__ import annotations

import shutil
import smtplib
import ssl

import pytest

from smtplab import Lab


def smtp_to(lab: Lab, host: str, port: int, context: ssl.SSLContext | None = None) -> smtplib.SMTP:
    """A standard-library client connected to a lab listener (implicit TLS where the port uses it)."""
    ep = lab.endpoint(host, port)
    if ep.listener.tls == "implicit":
        client = smtplib.SMTP_SSL(context=context, timeout=10)
        client._host = host  # the name the certificate must match
        client.connect(ep.address, ep.bound_port)
        return client
    client = smtplib.SMTP(timeout=10)
    client._host = host
    client.connect(ep.address, ep.bound_port)
    return client


def need(tool: str) -> str:
    """The path of a real tool, or skip the test saying why."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install {'dnsutils' if tool == 'dig' else tool}); "
                    "this test needs it as a real peer")
    return path
