"""Sample relying parties of compte-usager. They talk to the provider over HTTP only."""
