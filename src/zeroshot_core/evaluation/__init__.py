"""Evaluation: translate, segment and score against reference labels (:mod:`.evaluator`),
classical baselines, metrics (Dice, ASSD, PSNR, SSIM) and reports."""
