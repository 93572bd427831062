rule export_onnx:
    input:
        batch="results/inputs/{model}/bs{bs}.pt",
    output:
        onnx="results/onnx/{model}/bs{bs}.onnx",
        data="results/onnx/{model}/bs{bs}.onnx.data",
        modules="results/onnx/{model}/bs{bs}.modules.json",
        feed="results/onnx/{model}/bs{bs}.inputs.npz",
    log:
        "logs/export_onnx/{model}/bs{bs}.log",
    benchmark:
        "results/benchmarks/export_onnx/{model}/bs{bs}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS  # big models: one export at a time keeps memory in bounds
    params:
        settings=export_params,
    script:
        "../scripts/export_onnx.py"


rule convert_onnx_fp16:
    input:
        onnx="results/onnx/{model}/bs{bs}.onnx",
        data="results/onnx/{model}/bs{bs}.onnx.data",
        modules="results/onnx/{model}/bs{bs}.modules.json",
    output:
        onnx="results/onnx/{model}/bs{bs}.fp16.onnx",
        data="results/onnx/{model}/bs{bs}.fp16.onnx.data",
        modules="results/onnx/{model}/bs{bs}.fp16.modules.json",
    log:
        "logs/convert_onnx_fp16/{model}/bs{bs}.log",
    conda:
        "../../envs/torch.yaml"
    threads: MEASUREMENT_THREADS  # a large export in memory: one conversion at a time
    params:
        on_error=config["on_error"],
    script:
        "../scripts/convert_onnx_fp16.py"
