"""The Qt window over `nnstudio.core`. `MainWindow` is imported lazily so `import nnstudio.gui` stays cheap."""


def __getattr__(name: str):
    if name == "MainWindow":
        from nnstudio.gui.main_window import MainWindow

        return MainWindow
    raise AttributeError(name)
