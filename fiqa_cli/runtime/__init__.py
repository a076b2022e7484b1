"""What scoring needs at run time: decode, detect, align, batch, infer, write (onnxruntime,
OpenCV, numpy; never click, torch or ray)."""
