"""An example package with its own loss, proven equal in torch and Keras by lossparity."""
