"""The paper's own figures, in one place: Tables 1 and 2 as printed, the volume they time,
the panels of Figure 2 (docs/paper.md#the-papers-figures) and its inference tiling.

Everything that puts our numbers beside the paper's (the model summary, the notebooks'
tables, the benchmarks and their report) reads them from here.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class PaperRow:
  """One method's column of Table 1 or 2: (mean, std) of SSIM, PSNR (dB) and NRMSE over the
  111 test subjects, trainable parameters and operations per voxel as printed (#parm,
  #ops), and seconds per 320x320x256 volume on a GTX 1080 Ti; None where it prints none."""
  ssim: tuple
  psnr: tuple
  nrmse: tuple
  parameters: float | None
  ops: float | None
  seconds: float | None


TABLES = {
    "b1u8": PaperRow((0.9371, 0.0053), (35.35, 0.79), (0.0906, 0.0038), 0.307e6, 1.247e6, 13.20),
    "b2u4": PaperRow((0.9381, 0.0053), (35.46, 0.78), (0.0895, 0.0038), 0.200e6, 0.813e6, 9.74),
    "b3u4": PaperRow((0.9402, 0.0052), (35.56, 0.79), (0.0884, 0.0038), 0.304e6, 1.236e6, 15.13),
    "b4u4": PaperRow((0.9424, 0.0051), (35.88, 0.78), (0.0852, 0.0038), 0.412e6, 1.672e6, 20.87),
    "cubic": PaperRow((0.8377, 0.0088), (29.07, 0.90), (0.1873, 0.0087), None, None, None),
    "fsrcnn": PaperRow((0.9211, 0.0059), (34.11, 0.77), (0.1045, 0.0042), 0.064e6, 0.261e6,
                       21.27),
    "srresnet": PaperRow((0.9412, 0.0052), (35.71, 0.79), (0.0869, 0.0038), 2.005e6, 8.043e6,
                         132.71),
}
TABLE1 = ("b1u8", "b2u4", "b3u4", "b4u4")
TABLE2 = ("cubic", "fsrcnn", "srresnet", "b4u4", "b4u4_gan")
# The trained rows of both tables: networks, not interpolations (weights/<row>_l1 ships each
# L1 network, weights/b4u4_gan the GAN stage).
NETWORKS = tuple(row for row in dict.fromkeys(TABLE1 + TABLE2) if row != "cubic")
FIGURE2 = ("nearest", "cubic", "fsrcnn", "srresnet", "b4u4", "b4u4_gan")
VOLUME_SHAPE = (320, 320, 256)  # the timed volume: HCP at 0.7 mm
GPU = "GTX 1080 Ti"
TILE, MARGIN = 64, 3  # inference: 64^3 output tiles, each with 3 voxels of context per side
