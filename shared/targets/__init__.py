"""Target systems behind one connector interface (``base``): SmartTID (SmartAPI) and Tic-Tac Mobile."""
