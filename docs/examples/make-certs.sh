#!/usr/bin/env bash
# Regenerates the example CA hierarchy of the README's walkthrough with the system OpenSSL 3,
# as real CAs issue (most Chinese CAs use SM2 with SM3): an SM2 root CA, an intermediate CA under
# it that issues bidder certificates, and a bidder certificate for 鄂尔多斯某科技有限公司 (USCC
# 91150600MA000004XY in organizationIdentifier). The keys are made in a temporary directory and
# deleted; only the certificates are kept.
#
# Usage: docs/examples/make-certs.sh   (writes ca-root.pem, ca-intermediate.pem and bidder.pem
# next to this script)
set -euo pipefail
OUT="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# GM/T 0009 default signer ID, which Chinese CAs and OpenSSL 3 use for SM2 certificates.
SM2_ID="distid:1234567812345678"

cat > ext.cnf <<'CNF'
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ bidder ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out root.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out intermediate.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out bidder.key
openssl req -new -key root.key -sm3 -sigopt "$SM2_ID" -utf8 \
  -subj "/C=CN/O=彩虹示例数字认证股份有限公司/CN=彩虹示例SM2根CA" -out root.csr
openssl x509 -req -in root.csr -key root.key -sm3 -sigopt "$SM2_ID" -vfyopt "$SM2_ID" \
  -set_serial 0x5e01 -days 7300 -extfile ext.cnf -extensions root -out ca-root.pem
openssl req -new -key intermediate.key -sm3 -sigopt "$SM2_ID" -utf8 \
  -subj "/C=CN/O=彩虹示例数字认证股份有限公司/CN=彩虹示例SM2业务CA" -out intermediate.csr
openssl x509 -req -in intermediate.csr -CA ca-root.pem -CAkey root.key -sm3 -sigopt "$SM2_ID" \
  -vfyopt "$SM2_ID" -set_serial 0x5e02 -days 5475 -extfile ext.cnf -extensions intermediate \
  -out ca-intermediate.pem
openssl req -new -key bidder.key -sm3 -sigopt "$SM2_ID" -utf8 \
  -subj "/C=CN/ST=内蒙古自治区/L=鄂尔多斯市/O=鄂尔多斯某科技有限公司/organizationIdentifier=NTRCN-91150600MA000004XY/CN=赵六" \
  -out bidder.csr
openssl x509 -req -in bidder.csr -CA ca-intermediate.pem -CAkey intermediate.key -sm3 \
  -sigopt "$SM2_ID" -vfyopt "$SM2_ID" -set_serial 0x5e1001 -days 3650 -extfile ext.cnf \
  -extensions bidder -out bidder.pem
# OpenSSL 3.0 checks an SM2 signature with the distinguishing ID of the last link only: one
# link at a time.
openssl verify -vfyopt "$SM2_ID" -CAfile ca-root.pem ca-intermediate.pem
openssl verify -vfyopt "$SM2_ID" -partial_chain -CAfile ca-intermediate.pem bidder.pem
cp ca-root.pem ca-intermediate.pem bidder.pem "$OUT/"
echo "ca-root.pem, ca-intermediate.pem and bidder.pem written to $OUT"
