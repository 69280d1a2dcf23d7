"""The whole store put together: the `selfcheckout` command and the demo, the one package above the others."""
