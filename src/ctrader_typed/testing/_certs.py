"""A throwaway certificate authority and server certificate for the simulator's TLS.

Made at start-up with ``cryptography`` (the ``sim`` extra). By default the server
certificate names both ``localhost`` (DNS) and ``127.0.0.1`` / ``::1`` (IP), so clients can
keep hostname checking on whichever way they dial the simulator; ``hosts`` chooses other
names (IP addresses become IP entries, anything else a DNS name).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_HOSTS", "Certificates", "make_certificates"]

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True, slots=True)
class Certificates:
    """Files written by ``make_certificates`` and the contexts built from them."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the simulator's certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts only the simulator's CA, with hostname checks on."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def make_certificates(
    directory: Path, *, days: int = 30, hosts: Sequence[str] = DEFAULT_HOSTS
) -> Certificates:
    """Create a CA and a server certificate signed by it, as PEM files in ``directory``.

    ``hosts`` are the names the server certificate is valid for (its subject alternative
    names; the first is also its common name): IP addresses as IP entries, anything else
    as a DNS name. At least one is needed.
    """
    if isinstance(hosts, str):
        raise TypeError("hosts must be a sequence of host names, not one string")
    names = [host.strip() for host in hosts]
    if not names or not all(names):
        raise ValueError("the certificate needs at least one host name, and no empty one")
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "the simulator needs the 'cryptography' package: pip install 'ctrader-typed[sim]'"
        ) from exc

    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(hours=1)
    not_after = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ctrader-typed simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ctrader-typed simulator throwaway CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    alternative_names: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative_names.append(x509.DNSName(name))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(alternative_names),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server-key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return Certificates(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
