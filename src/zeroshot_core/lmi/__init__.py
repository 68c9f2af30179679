"""Local mutual information maps: dispatch (:mod:`.dispatch`), differentiable tensor
ops (:mod:`.tensor`) and the fused C kernel for CPU inference (:mod:`.native`)."""
