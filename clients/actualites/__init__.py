"""« Actualités de la Région »: a second app, which publishes news to the subscribers of
a theme (hub subscriptions API) and signs citizens in with the same provider (single
sign-on across apps)."""
