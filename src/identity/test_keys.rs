//! Throwaway keys for tests only, generated with OpenSSL 3 for this module. Never use
//! them anywhere else.

/// EC P-256, PKCS#8 (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
pub(super) const EC_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRXknh9sNo+yVis/g\n\
dyga3Sokw8nbBST658DhA79bSP6hRANCAATnkJAXG2BV7gw9k6nsj3sEhOBXUW9V\n\
biyKh2YrKLmjbJXq9Aa3ornJOawC+JF2eBHWVdyzRhik6e3cB+Z2PprC\n\
-----END PRIVATE KEY-----\n";

/// The same EC key as [`EC_PKCS8`], as SEC1 (`openssl ec`).
pub(super) const EC_SEC1: &str = "\
-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEIEV5J4fbDaPslYrP4HcoGt0qJMPJ2wUk+ufA4QO/W0j+oAoGCCqGSM49\n\
AwEHoUQDQgAE55CQFxtgVe4MPZOp7I97BITgV1FvVW4siodmKyi5o2yV6vQGt6K5\n\
yTmsAviRdngR1lXcs0YYpOnt3Afmdj6awg==\n\
-----END EC PRIVATE KEY-----\n";

/// A second EC P-256 key, PKCS#8.
pub(super) const EC2_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/4Tipv8lR5Qoefow\n\
dWMi65FjmuSAJl2YMuaXup9O5x2hRANCAARXgrG7IB5s3eNqLeP1sz27JsEg5ojG\n\
9VhQVeVonxELwVwwGHco0XxD4GLM65J6Zi/Qj3xWiU88rtHHEwXPuPen\n\
-----END PRIVATE KEY-----\n";

/// RSA 2048, PKCS#8 (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`).
pub(super) const RSA_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC0bmAEJzO48Xrh\n\
kGJtLNGqDVDGqq1YY6UpYKwpjs4T+BfgRxN9XvSk4wQRc6hOcPqbMtZGVxRQ4Did\n\
TPwv/R5r8Jxj12cAZbqyah4UcPJ0sfJagf8iMtR+yPske86kp7HKgQ0l/rOKCq04\n\
nOELmGarrxr0QPJzkWFbjS0xAkzWFHFVDUowKypFFykDlFr8rMphUcwUETPfH/5K\n\
3YbVccypxL3gJXPVlxk5bYMDRew1lcn7tP7YDUIoIcIiJ6MentV4kuCaWp7dAeC6\n\
CmFsbL222zURH7pkXquO/L+eiqjRZsFHKDVrQZQcqLa/XWO1H959fV0PBwhPL20J\n\
pzBbfoX/AgMBAAECggEAEuIYUhGePqVQfx84Gy/yc3HNpIpuoOOw1d9EYAcON0B4\n\
PeSCZtUTaoGdxovMWgVF8mHZfhFqqA+HV/hwzj7sj6RmDFGZ+eHWWQofwsjn/wwz\n\
49gGERixF4xw3ZUdf9WobEahpHp/D3E68W6tuM5xiayborjSBwP4j0x7pczqqLQx\n\
GFYjwRfFt5+2hfucCG2Gtf7RJ0rmLPoVUR+cYyALsWdp8ZQpebsGRKM9gwKSWlhT\n\
SEXEUpqn0LIvFXwcp2sMk6/pQFwLXqKcr4ajbLdWHCmBNwS69TLrceQ7+beecDhK\n\
o0w9tjBNzXhF/ee23fEMmabB2plZAWrTpiGg+ZSz9QKBgQD8oqrEZk2+IXrFe5Mo\n\
bALMcfHVxImE9LcmRNQBoaAWLUAgfIQ9NfjOfwdsNE4gQ2J56uenvWQSPjot6oEN\n\
6vNLwXnlE1WVJoPGGvhhrW3gBnwwPkFF4j7lV8l+7ZP710/z7T06KWBXiCEUtoyi\n\
AXzjAmzLl2PWUu+DqxTLLqeBuwKBgQC21YkRnvW4prbqHvnQHw2qxRXnz/dzmYyx\n\
9StcR7coQ8GoazJFhqxhvq2ldUsqTGM2qbRt1t/2nT9BXsPrrkQbU5Xu/rz80rdv\n\
L70uh/UmRzmMzQYIMkFKzeCUGAZAsXQ2CsbOzPrlteN21NCz9FKPSgt3kds7yRWj\n\
uWIv5+IWjQKBgQCs77Ux6E4DfuuJz8O2gemQhddj27u/db0Bx0/RJhBt3d/t3Q6w\n\
0AdXY4FzQoLQdxAsIO8e1fhwvIQa9lINcu3Ex9ZnR0roZIsDy2aHhq6WEhpk89i+\n\
u9cOK3/VEVChrowekCG/dJ9si9UJVsUCCT6yLvDGlQVUq0UlvrDnPTKRDQKBgQCp\n\
GZpqp8DQhbELnJakfPQhC6OVAW32hv/v37e448NtBC3q3Spjz4lD5h2ouHFKr9fb\n\
SN5N8Ly31PwaM9G0+zqWo5o6r3SPyTxLI7YvgSOlwZ5isYVwszpcO0oI7qdp0jaP\n\
fSwfPMqZBr9YusBEkCaDzJIKhuZjxzmycdV0RV2ASQKBgEJDn4KjrLDbGMl1T10T\n\
s4Cef5LVynnAI7JGGjKB6x8E6keEPr9N8GTB6A5wa7V2MlXV/uElhNRe9sVpnLIb\n\
iuDWBG3Jx5itxbNFngM30onENrPomsgBr01brR5YPhQ379d09jA0P2huRLEJuLfh\n\
lXd5LOaT+EiFvlRzqfSpt/Jn\n\
-----END PRIVATE KEY-----\n";

/// The same RSA key as [`RSA_PKCS8`], as PKCS#1 (`openssl rsa -traditional`).
pub(super) const RSA_PKCS1: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpAIBAAKCAQEAtG5gBCczuPF64ZBibSzRqg1QxqqtWGOlKWCsKY7OE/gX4EcT\n\
fV70pOMEEXOoTnD6mzLWRlcUUOA4nUz8L/0ea/CcY9dnAGW6smoeFHDydLHyWoH/\n\
IjLUfsj7JHvOpKexyoENJf6zigqtOJzhC5hmq68a9EDyc5FhW40tMQJM1hRxVQ1K\n\
MCsqRRcpA5Ra/KzKYVHMFBEz3x/+St2G1XHMqcS94CVz1ZcZOW2DA0XsNZXJ+7T+\n\
2A1CKCHCIiejHp7VeJLgmlqe3QHgugphbGy9tts1ER+6ZF6rjvy/noqo0WbBRyg1\n\
a0GUHKi2v11jtR/efX1dDwcITy9tCacwW36F/wIDAQABAoIBABLiGFIRnj6lUH8f\n\
OBsv8nNxzaSKbqDjsNXfRGAHDjdAeD3kgmbVE2qBncaLzFoFRfJh2X4RaqgPh1f4\n\
cM4+7I+kZgxRmfnh1lkKH8LI5/8MM+PYBhEYsReMcN2VHX/VqGxGoaR6fw9xOvFu\n\
rbjOcYmsm6K40gcD+I9Me6XM6qi0MRhWI8EXxbeftoX7nAhthrX+0SdK5iz6FVEf\n\
nGMgC7FnafGUKXm7BkSjPYMCklpYU0hFxFKap9CyLxV8HKdrDJOv6UBcC16inK+G\n\
o2y3VhwpgTcEuvUy63HkO/m3nnA4SqNMPbYwTc14Rf3ntt3xDJmmwdqZWQFq06Yh\n\
oPmUs/UCgYEA/KKqxGZNviF6xXuTKGwCzHHx1cSJhPS3JkTUAaGgFi1AIHyEPTX4\n\
zn8HbDROIENieernp71kEj46LeqBDerzS8F55RNVlSaDxhr4Ya1t4AZ8MD5BReI+\n\
5VfJfu2T+9dP8+09OilgV4ghFLaMogF84wJsy5dj1lLvg6sUyy6ngbsCgYEAttWJ\n\
EZ71uKa26h750B8NqsUV58/3c5mMsfUrXEe3KEPBqGsyRYasYb6tpXVLKkxjNqm0\n\
bdbf9p0/QV7D665EG1OV7v68/NK3by+9Lof1Jkc5jM0GCDJBSs3glBgGQLF0NgrG\n\
zsz65bXjdtTQs/RSj0oLd5HbO8kVo7liL+fiFo0CgYEArO+1MehOA37ric/DtoHp\n\
kIXXY9u7v3W9AcdP0SYQbd3f7d0OsNAHV2OBc0KC0HcQLCDvHtX4cLyEGvZSDXLt\n\
xMfWZ0dK6GSLA8tmh4aulhIaZPPYvrvXDit/1RFQoa6MHpAhv3SfbIvVCVbFAgk+\n\
si7wxpUFVKtFJb6w5z0ykQ0CgYEAqRmaaqfA0IWxC5yWpHz0IQujlQFt9ob/79+3\n\
uOPDbQQt6t0qY8+JQ+YdqLhxSq/X20jeTfC8t9T8GjPRtPs6lqOaOq90j8k8SyO2\n\
L4EjpcGeYrGFcLM6XDtKCO6nadI2j30sHzzKmQa/WLrARJAmg8ySCobmY8c5snHV\n\
dEVdgEkCgYBCQ5+Co6yw2xjJdU9dE7OAnn+S1cp5wCOyRhoygesfBOpHhD6/TfBk\n\
wegOcGu1djJV1f7hJYTUXvbFaZyyG4rg1gRtyceYrcWzRZ4DN9KJxDaz6JrIAa9N\n\
W60eWD4UN+/XdPYwND9obkSxCbi34ZV3eSzmk/hIhb5Uc6n0qbfyZw==\n\
-----END RSA PRIVATE KEY-----\n";

/// RSA 1024, PKCS#8: too small.
pub(super) const RSA_1024: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBALzbN1xi+NlIdBGH\n\
woLACy9X4WhA4LaOl3I9K/KGMEq/Rl86/0OquEM81Uqg+/ENuBuNs1Zm77IA8ZE5\n\
DxJkw0DU7H+Eua5mcJY3LJ4IMSDJ+gpTguwAPN1tlxl/Q6dzuumQQdAyQGWEkXmP\n\
5X+KourKqt00QULg0Edfok7ryfQ9AgMBAAECgYBrxk5ZksGgfhB+0JLYOvAnHGeu\n\
LxgOFmGm9/HUfW+huHZYcjqqSwrMlDLEXAprDgE6+CqX7DZtxswUrBNF0+r4YOiC\n\
T0hqLY9TXR5gnn4I2U8xgWRy7Qav97hAQbOGEn+5UCtfX5qhaN5iQxCW+d/3Ztk2\n\
XnHDaoUWtoZUih+2AQJBAOyOlZiDU51xnr9FprouXeUtbh5VoyJhCayaNyynhh76\n\
ZLOlea5VlPzO0uPN2OCG5xWQwbUyypGsvJw2I2uOVM0CQQDMYPVQZz6nFvHoQam7\n\
beAHvEXLHzyXJ0BaQf2UWZlgilX9DQksugRdDKoOscjfSbrUsaVF8Q0rpryt3hpp\n\
sp0xAkAqE36GXy2bPp929COg0CiBYCBLIv5eWhZHbjLMLYwMrIsG7TMEkFJs2Tjn\n\
rjCaV0R5MINUAJHJcYkm2/ZW5j0tAkEAkJmI9voVOeLiBJFwpUt31gE+4BeZptf+\n\
j91grDU4bzVw4Tj35M03iR4Ms5jVpiVkKlgFtxZ1Wwz9MYaS6XWWAQJBAM7o7a6x\n\
AZjzu+/EnMZz0LsDd7jzIoL3OnLGs/ne2VXKzpJ6CB8nVc1GQ4NCzQeqLqR3HD0z\n\
jOKO13k5j3CxUUY=\n\
-----END PRIVATE KEY-----\n";

/// Ed25519, PKCS#8: unsupported.
pub(super) const ED25519: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEICgRGrcj/Ft0I4T6J0dtOUKjD4UiEfN9pz3B7fdFa3Gp\n\
-----END PRIVATE KEY-----\n";

/// EC P-384, PKCS#8: unsupported curve.
pub(super) const EC_P384: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBJLOPgXqIXttlzNi64\n\
wKv2F4rlLR9GR/rGWisZQmoiR0RPMJpz420Y8yP7/D4XnEyhZANiAARgVO7h8qWd\n\
6qdCUObHaP8sVQJHPnrTDgW93yMdAtJ8/IFX/x5PfDLBBRdPfeu5gPf6zwRDProj\n\
QlJHID9H/vAoOYvY3hk70EU1WDBEWV7lQhz1kFG6t6TizU2TUN8V8kY=\n\
-----END PRIVATE KEY-----\n";

/// EC P-384, SEC1: unsupported curve.
pub(super) const EC_P384_SEC1: &str = "\
-----BEGIN EC PRIVATE KEY-----\n\
MIGkAgEBBDBJLOPgXqIXttlzNi64wKv2F4rlLR9GR/rGWisZQmoiR0RPMJpz420Y\n\
8yP7/D4XnEygBwYFK4EEACKhZANiAARgVO7h8qWd6qdCUObHaP8sVQJHPnrTDgW9\n\
3yMdAtJ8/IFX/x5PfDLBBRdPfeu5gPf6zwRDProjQlJHID9H/vAoOYvY3hk70EU1\n\
WDBEWV7lQhz1kFG6t6TizU2TUN8V8kY=\n\
-----END EC PRIVATE KEY-----\n";
/// The EC key of [`EC_PKCS8`] as SEC1 without its public key (`openssl ec -no_public`).
pub(super) const EC_SEC1_NO_PUBLIC: &str = "\
-----BEGIN EC PRIVATE KEY-----\n\
MDECAQEEIEV5J4fbDaPslYrP4HcoGt0qJMPJ2wUk+ufA4QO/W0j+oAoGCCqGSM49\n\
AwEH\n\
-----END EC PRIVATE KEY-----\n";

/// The EC key of [`EC_PKCS8`] as PKCS#8 without its public key.
pub(super) const EC_PKCS8_NO_PUBLIC: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MEECAQAwEwYHKoZIzj0CAQYIKoZIzj0DAQcEJzAlAgEBBCBFeSeH2w2j7JWKz+B3\n\
KBrdKiTDydsFJPrnwOEDv1tI/g==\n\
-----END PRIVATE KEY-----\n";

/// A self-signed certificate for [`EC_PKCS8`] (`openssl req -x509`).
pub(super) const EC_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBczCCARmgAwIBAgIUFDxLP/Dn/Qx9QAWs2DdeMGexZtcwCgYIKoZIzj0EAwIw\n\
DzENMAsGA1UEAwwEdGVzdDAeFw0yNjExMjIyMjU1MTlaFw0yNjExMjMyMjU1MTla\n\
MA8xDTALBgNVBAMMBHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATnkJAX\n\
G2BV7gw9k6nsj3sEhOBXUW9VbiyKh2YrKLmjbJXq9Aa3ornJOawC+JF2eBHWVdyz\n\
Rhik6e3cB+Z2PprCo1MwUTAdBgNVHQ4EFgQUNz0TqTSy7KeP+kBXg4EKJXdj6jww\n\
HwYDVR0jBBgwFoAUNz0TqTSy7KeP+kBXg4EKJXdj6jwwDwYDVR0TAQH/BAUwAwEB\n\
/zAKBggqhkjOPQQDAgNIADBFAiEAz1L7TSaOeY6wXDrfEyIXQfHZMU17NOyv/SBf\n\
GCUl5EoCIDchKVjg2WQpJy+zximgZl+4ZrA0ak1BsMxMLfZISAv5\n\
-----END CERTIFICATE-----\n";
