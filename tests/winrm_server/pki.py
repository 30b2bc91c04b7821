"""A throw-away certificate authority and server certificates for the HTTPS listener.

A WinRM HTTPS listener needs a certificate whose subject matches the host name the client
connects to (Microsoft, "Installation and configuration for Windows Remote Management":
the listener's Hostname must match the certificate's CN; clients check the name). The server
certificate here names the host in its subjectAltName (an IP address entry for an address,
a DNS entry otherwise), which is what Python's ssl (used by requests/urllib3) checks, and
carries the serverAuth extended key usage like a WinRM listener certificate must.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = datetime.timedelta(days=2)


@dataclass(frozen=True)
class CertAuthority:
    cert_path: Path
    key_path: Path

    def issue(self, host: str, directory: Path | str, stem: str | None = None) -> ServerCert:
        """A server certificate for `host` (a name or an IP address) signed by this CA."""
        return _issue(self, host, Path(directory), stem or f"server-{_safe(host)}")


@dataclass(frozen=True)
class ServerCert:
    cert_path: Path
    key_path: Path
    host: str


def _safe(host: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in host)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_test_ca(directory: Path | str, name: str = "plantsweep WinRM test CA") -> CertAuthority:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    ca = CertAuthority(directory / "ca.pem", directory / "ca.key")
    ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, ca.key_path)
    return ca


def _issue(ca: CertAuthority, host: str, directory: Path, stem: str) -> ServerCert:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    issued = ServerCert(directory / f"{stem}.pem", directory / f"{stem}.key", host)
    issued.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, issued.key_path)
    return issued
