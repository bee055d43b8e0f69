package obo

import (
	"encoding/json"
	"errors"

	"github.com/obo-gateway/obo-gateway/internal/safejson"
)

// errNotSeconds is the decoding error of a lifetime field (expires_in,
// ext_expires_in, refresh_in) that is not a number of seconds.
var errNotSeconds = errors.New("a lifetime field (expires_in, ext_expires_in or refresh_in) is not a number of seconds")

// decodeError is a failure to decode a document the authority sent. Its
// message names what is wrong and where, but never quotes the document,
// which may hold a token; Unwrap gives the decoder's own error.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }

// bodyError turns an error of json.Unmarshal on an authority's answer into
// one whose message holds no part of the answer: the byte offset of a
// syntax error, the field of a type mismatch.
func bodyError(err error) error {
	if msg, ok := safejson.Describe(err); ok {
		return &decodeError{msg: msg, err: err}
	}
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		return &decodeError{msg: "the answer is not a JSON object", err: err}
	case errors.Is(err, errNotSeconds):
		return err
	}
	return &decodeError{msg: "not a token response", err: err}
}
