//! X.509 certificates and CRLs for CA mutual recognition. (In progress.)
