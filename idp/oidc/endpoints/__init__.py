"""One module per protocol endpoint, as node-oidc-provider lays them out."""
