"""HTTP authentication of the WinRM listener: Basic and NTLM (as HTTP Negotiate).

What it follows:
* Windows offers "WWW-Authenticate: Negotiate" (and "Basic realm=\"WSMAN\"" when Basic is on);
  requests_ntlm (used by pywinrm's ntlm transport) answers a Negotiate offer with raw NTLM
  tokens in "Authorization: Negotiate <base64>". NTLM authenticates the TCP connection, not one
  request: later requests on the connection carry no Authorization header.
* The acceptor is pyspnego's pure-Python NTLM (spnego.server(protocol="ntlm")); it reads the
  accounts from the file named by NTLM_USER_FILE, lines "DOMAIN:USER:PASSWORD" (pyspnego
  spnego/_ntlm.py _get_credential). That variable is process-wide, so it is set only around
  each acceptor call, under a lock.
* Over HTTPS the acceptor checks the channel binding (RFC 5929 tls-server-end-point of the
  server certificate) that requests_ntlm sends: like CbtHardeningLevel=Strict.
* AllowUnencrypted=false (the Windows default, MS-WSMV 2.2.4.36): Basic is refused on plain
  HTTP (jborean93 in hashicorp/packer#6205: "constantly send a 401"), and NTLM over HTTP must
  use message encryption (the handler checks that).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import spnego
import spnego.channel_bindings
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

_ENV_LOCK = threading.Lock()
NTLM_NEGOTIATE = b"NTLMSSP\x00\x01\x00\x00\x00"
NTLM_AUTHENTICATE = b"NTLMSSP\x00\x03\x00\x00\x00"


@contextlib.contextmanager
def _ntlm_user_file(path: str) -> Iterator[None]:
    with _ENV_LOCK:
        old = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = path
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = old


def _split(name: str) -> tuple[str, str]:
    domain, _, user = name.rpartition("\\")
    return domain, user


def tls_channel_bindings(cert_pem_path: str) -> spnego.channel_bindings.GssChannelBindings:
    """RFC 5929 tls-server-end-point binding of our certificate (what requests_ntlm sends)."""
    with open(cert_pem_path, "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert.public_bytes(Encoding.DER))
    return spnego.channel_bindings.GssChannelBindings(
        application_data=b"tls-server-end-point:" + digest.finalize()
    )


@dataclass
class Outcome:
    """user set: authenticated. Otherwise answer 401 with these WWW-Authenticate values."""

    user: str | None = None
    challenges: list[str] = field(default_factory=list)


class Authenticator:
    """Server-wide settings; hands each connection its own ConnectionAuth."""

    def __init__(
        self,
        users: dict[str, str],
        methods: frozenset[str],
        allow_unencrypted: bool,
        tls: bool,
        channel_bindings: spnego.channel_bindings.GssChannelBindings | None,
    ):
        unknown = methods - {"basic", "ntlm"}
        if unknown:
            raise ValueError(f"unsupported auth methods: {sorted(unknown)}")
        self.users = dict(users)
        self.methods = methods
        self.allow_unencrypted = allow_unencrypted
        self.tls = tls
        self.channel_bindings = channel_bindings
        self._dir = tempfile.TemporaryDirectory(prefix="winrm-ntlm-")
        self.user_file = os.path.join(self._dir.name, "ntlm_users")
        lines = []
        for name, password in self.users.items():
            domain, user = _split(name)
            lines.append(f"{domain}:{user}:{password}")
            if domain:  # a local account also answers to a bare user name
                lines.append(f":{user}:{password}")
        with open(self.user_file, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self._dir.cleanup()

    @property
    def basic_offered(self) -> bool:
        return "basic" in self.methods and (self.tls or self.allow_unencrypted)

    def rejection(self) -> Outcome:
        offers = []
        if "ntlm" in self.methods:
            offers.append("Negotiate")
        if self.basic_offered:
            offers.append('Basic realm="WSMAN"')
        return Outcome(challenges=offers)

    def check_basic(self, user: str, password: str) -> bool:
        for name, secret in self.users.items():
            if secret == password and user.lower() in (name.lower(), _split(name)[1].lower()):
                return True
        return False

    def new_ntlm_context(self) -> spnego.ContextProxy:
        with _ntlm_user_file(self.user_file):
            return spnego.server(
                service="http",
                protocol="ntlm",
                channel_bindings=self.channel_bindings,
                options=spnego.NegotiateOptions.use_ntlm,
            )

    def ntlm_step(self, context: spnego.ContextProxy, token: bytes) -> bytes | None:
        with _ntlm_user_file(self.user_file):
            return context.step(token)


class ConnectionAuth:
    """Authentication state of one TCP connection."""

    def __init__(self, auth: Authenticator):
        self._auth = auth
        self._pending: spnego.ContextProxy | None = None
        self.user: str | None = None
        self.context: spnego.ContextProxy | None = None  # completed NTLM: used for sealing

    def authenticate(self, header: str | None) -> Outcome:
        if not header:
            return Outcome(self.user) if self.user else self._auth.rejection()
        scheme, _, token = header.strip().partition(" ")
        try:
            raw = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return self._auth.rejection()
        if scheme.lower() == "basic" and self._auth.basic_offered:
            user, _, password = raw.decode("utf-8", "replace").partition(":")
            if self._auth.check_basic(user, password):
                return Outcome(user)
            return self._auth.rejection()
        if scheme.lower() in ("negotiate", "ntlm") and "ntlm" in self._auth.methods:
            return self._ntlm(scheme, raw)
        return self._auth.rejection()

    def _ntlm(self, scheme: str, token: bytes) -> Outcome:
        try:
            if token.startswith(NTLM_NEGOTIATE):
                # A new handshake replaces whatever this connection had.
                self.user, self.context = None, None
                self._pending = self._auth.new_ntlm_context()
                challenge = self._auth.ntlm_step(self._pending, token) or b""
                return Outcome(challenges=[f"{scheme} {base64.b64encode(challenge).decode()}"])
            if token.startswith(NTLM_AUTHENTICATE) and self._pending is not None:
                context, self._pending = self._pending, None
                self._auth.ntlm_step(context, token)
                if context.complete:
                    self.context = context
                    self.user = context.client_principal or "unknown"
                    return Outcome(self.user)
        except spnego.exceptions.SpnegoError:
            self._pending = None
        return self._auth.rejection()
