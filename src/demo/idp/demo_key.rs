//! The demo provider's RSA signing key — **a published demo key, not a secret** — the
//! mock provider's key unless a test gives it others; part of the test kit and the demo,
//! never on the proxy's request path.
//!
//! It is fixed (rather than generated at start) because generating a 2048-bit RSA key
//! needs a crate the proxy does not otherwise use, and takes seconds in a debug build.
//! Anyone can read it here, so anyone could sign ID tokens the demo provider would
//! appear to have issued: that is harmless only because the demo provider runs on
//! loopback for a local demonstration. Never configure a real deployment to trust it.
//!
//! PKCS#1 (`RSA PRIVATE KEY`), as openidconnect's `CoreRsaPrivateSigningKey::from_pem`
//! requires. Made with `openssl genrsa -traditional 2048`.

/// The key id published in the JWKS and put in every ID token header.
pub(super) const DEMO_KEY_ID: &str = "portcullis-demo-idp-key";

/// The demo provider's private key (demo only, see the module docs).
pub(super) const DEMO_KEY_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEowIBAAKCAQEAl4UYTwWiACHdrbZFODM10IEoewhg4h6pP1X9uk/UVyVOlU31\n\
pVHiEh+XFi15bD7WyIMvQRl0gcrM+d4vzoHZpy4Hb4RsqfA9aKJ1cKdLjzCysJh6\n\
f2lHEqyo3RwyT/hnx5MewJ9MhaVqe1D23CDRBga/F0T4VfdujsWQhvuJGxcr9K59\n\
eajQU6liBd580s+lS5F1MoiK8kFFUwMR5J+2zShhpk7VlpsxWjC2ERdmo7qdX6yx\n\
r3UnED7LjeOj6tZi+nA3kOQvhTLgKhyHgyVKploGrGXS6YOUmj8hZNzA7ygXV/cT\n\
26K9N187kMj9LiWOTQbrSnFC+6veIrg27bVIhQIDAQABAoIBADKqcDr4VLf7mw9b\n\
zCCjSyLqFXmyjwb9nrWNkRbsW8I6OOFHHNWHoHNT+ecSFLCkAJky+Kmpk+JUyJ7i\n\
85R3qiqzgwwAuX9H1Jj4/hFJ98OtUosnqYqSTxBJCPxK0e4Yz8cWBGn/uoxUCFus\n\
8qcgGBUOS3bB+tJwNxlpqc7hLHMQk+xqIngryjaKcV90xqwdtFCiH3Zn3Qveczhd\n\
Usen5tT0YzWSjYurOdPr5hPx28YwmlLstUgzrmpIVdQpwTlsXeDdHExPBpnSc1II\n\
fGw60kptZeVScwYHruh+3XmXBVZkyjeqMn0KniN2QoUVaugYdmS3SDoD3k/y1iF0\n\
pv2z+r8CgYEA1GTz5tZF9A8xJWc1yFZnwim8Jyh9aw+jEfh4b3JmA26+jHGrmms1\n\
mn93DzT9a1g/yXIbsxLQVw1Zew27tnkn61abKIQ1iB0926vZ6qwoMC61UIt0QlcR\n\
rjoZWmfM6fPf9RNE1BMPnltGEURV3vEvC97E9iU2lznR9KV3wJsS9PsCgYEAtqCy\n\
KVEUS8uUQare3DSJAv1/cVjWx3UYe/g9LsqIFGA3Nr4y8dQteFoBzeDxv0AA/6KO\n\
slq5WoK+b63jm6hwT52VKFvo9un3+6l3q/cU26bP6aSHX5uxyEgBBt1r/4AyBNwr\n\
OsNteVWGjDGSF6lBIHudGvA0XWLsaMI3tpL9QH8CgYAGeaVt7i5nyGbJKyJanze+\n\
laMk1nksYGeqTpbtXuF5TVEF2xlONeKGeUhZ8FWhhik7rPznMrWjUcbel4aXg44S\n\
AKvuSkmPgsS2A8E7BFCdV28zq2y58Qma9C59sRhwMX0sbY/1nzckrseuExVDHLtA\n\
c2Qx1OSbK6oY+UpzVsb3LQKBgQCKOEs/LAdBal3V6X3sibJc2gFXhxZfNUeHpBSi\n\
UlT1nvCK9R7Xmm+jk/Ojnyk4Rze6Qozfffyk/SkmmyQVzkDacPjP5+gE4IV4KgXR\n\
2BooODNJsOVoPg0q+RwV1wWDBcJVnVD2k6xKVamUd3wLfmU1MXlxRvVK7LDihIPo\n\
IY2c/wKBgEYCbzfXlXNLkQvXGCtWyFGujWeAseqB4C48xSYHXqI98sshK4Gb2siq\n\
rTg+nOC3IVpCGSAl5Uipiucbtxgcyqkj5C5APsBt6MaSXw+1e0gQg+vXNF/S2ySQ\n\
nPdCLqsTIlqXLlTYPYuZ5VfAM8hGP4/mOFYA8YiDiy08gkD2Pd5N\n\
-----END RSA PRIVATE KEY-----\n\
";
