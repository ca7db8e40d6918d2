"""How scan values become grey pixels: windows by modality and anatomy, free of Qt.

Shared by the viewer (on screen) and the reports (key images in the PDF), so a finding looks the
same in both.
"""
