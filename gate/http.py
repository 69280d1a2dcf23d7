"""The HTTP session every client of ours uses (forwarder, bank connector, phone).

Reading proxy and CA settings from the environment once, not on every request, matters on the forwarder's
drain path (requests re-reads them per request when trust_env is on); the answers are the same.
"""

from __future__ import annotations

import os

import requests


def environment_session(url: str) -> requests.Session:
    """A session with the proxy and CA settings of the environment read once, for requests to url."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session
