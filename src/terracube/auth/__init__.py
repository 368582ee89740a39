"""Who is asking: accounts, tokens, the built-in OpenID Connect issuer and the operator's other issuers."""
