"""Web glue shared by the blueprints: signed-in state, errors, i18n, forms."""
