/* Placeholder: the JWKS cache interface. */
