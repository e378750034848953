module perfgate.bench/pprofworkload

go 1.22
