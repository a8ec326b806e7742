"""Fast paths: a method's forward and backward as one autograd node, where composing modules would spend a step on
dispatch, casts and full-size copies rather than arithmetic.

Each module computes what its method's math (the method file) defines, and the tests hold it against that math,
values and gradients: ``lora`` (LoRA, SaLoRA's gated LoRA, AdaLoRA's SVD form), ``dora`` (DoRA), ``mora`` (MoRA's
operators, in the method's vocabulary: ``mora_type`` and the sharing ``grouping``), ``shared_input`` (sibling layers
reading one input computed together), ``peft`` (peft's DoRA and AdaLoRA objects given those nodes: every runtime
class swap on a peft object lives there) and ``adalora_allocator`` (peft's rank allocator on flat buffers).
"""
