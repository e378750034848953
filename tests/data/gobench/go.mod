module perfgate.test/gobench

go 1.22
