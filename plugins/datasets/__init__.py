"""Dataset plugins: each returns a :class:`bench.data.faces.FaceData` with its protocol split."""

from bench import hookimpl
from plugins.datasets.arrays import load_arrays
from plugins.datasets.ddh_pickles import load_facescrub_ddh, load_ytf_ddh
from plugins.datasets.facescrub import load_facescrub
from plugins.datasets.folder import load_folder
from plugins.datasets.orl import load_orl
from plugins.datasets.synthfaces import load_synthfaces
from plugins.datasets.ytf import load_ytf


@hookimpl
def register_datasets(register):
    register("orl", load_orl)
    register("ytf-ddh", load_ytf_ddh)
    register("facescrub-ddh", load_facescrub_ddh)
    register("ytf", load_ytf, "raw aligned YouTube Faces frames (frames or videos protocol)")
    register("facescrub", load_facescrub)
    register("folder", load_folder)
    register("arrays", load_arrays)
    register("synthfaces", load_synthfaces)
