"""The next-token section: the text coloured by rank, the candidates, Step, pick, Continue, Compare and Fidelity."""
