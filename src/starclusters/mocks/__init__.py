"""Mock-cluster bank (thesis §2.3.3, §3.1.2–3.1.3): EFF star positions, PSFs, fast
rendering of noise-free stamps, and the one ``compose()`` that puts a stamp on a
real background with photon noise and returns its visibility.
"""
