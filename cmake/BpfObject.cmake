# Filled by the BPF pipeline work: bpf_object(NAME SOURCE) -> NAME.bpf.o + NAME.skel.h
