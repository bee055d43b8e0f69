module github.com/obo-gateway/obo-gateway

go 1.26
