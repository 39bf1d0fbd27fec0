"""course_lib: DeepFill v1 (Yu et al., CVPR 2018, "Generative Image Inpainting with
Contextual Attention") rebuilt in PyTorch, faithful to the official release.

Conventions (the course's style guide, see README.md): images ``x`` are NCHW float in
[-1, 1], RGB; ``mask`` is (B or 1, 1, H, W) with 1 = hole, 0 = known;
``x_incomplete = x * (1 - mask)``.
"""
from .attention import (attention_offsets, contextual_attention, downsample, extract_patches,
                        fuse_scores, masked_softmax, matching_scores, normalize_patches,
                        reconstruct, valid_patches)
from .baselines import diffusion_fill, mean_fill
from .checkpoint import latest_checkpoint, load_checkpoint
from .config import TrainConfig, available_configs, load_config
from .convert import ConversionError, convert_checkpoint
from .critics import Critic, GlobalCritic, LocalCritic
from .ema import WeightEMA
from .data import (CelebADataset, CelebAHQDataset, FlistDataset, ImageFolderDataset,
                   ImageListDataset, Places365Dataset, make_dataset, read_flist, write_flist)
from .flow import compute_color, flow_to_color, make_color_wheel
from .generator import PARAMS_AT_CNUM_32, CoarseNetwork, Generator, RefineNetwork
from .images import (image_to_tensor, load_image, load_mask, mask_to_image, mask_to_tensor,
                     save_image, tensor_to_image, to_uint8)
from .inpainting import InpaintResult, inpaint
from .inpaint_cli import load_generator
from .losses import (LossWeights, ae_loss, critic_loss, discounted_l1_loss, generator_loss,
                     gradient_penalty, spatial_discount, wgan_critic_loss, wgan_generator_loss)
from .masks import (BBox, bbox_to_mask, brush_stroke_mask, local_patch, random_bbox,
                    random_box_mask, strokes_to_mask)
from .metrics import all_metrics, l1_error, l2_error, psnr, ssim, tv_loss
from .ops import GenConv, GenDeconv, SameConv2d, pad_same, resize_nearest, same_padding
from .pretrained import OFFICIAL_WEIGHTS, load_pretrained, load_pretrained_critics
from .samples import course_image
from .seed import make_generator, seed_everything
from .tf_checkpoint import CheckpointError, list_variables, read_checkpoint
from .train import NonFiniteLossError, Trainer, TrainResult
from .toy import ToyDataset, toy_image

__version__ = "0.1.0"
