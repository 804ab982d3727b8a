"""Statistics without a numerical library: the special functions (``special``) behind the public
``ratepad.metrics``."""
