package obo

import (
	"encoding/json"
	"errors"
	"fmt"
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
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &decodeError{msg: fmt.Sprintf("not valid JSON (at byte %d)", syn.Offset), err: err}
	case errors.As(err, &typ) && typ.Field != "":
		return &decodeError{msg: fmt.Sprintf("field %s has the wrong type", typ.Field), err: err}
	case errors.As(err, &typ):
		return &decodeError{msg: "the answer is not a JSON object", err: err}
	case errors.Is(err, errNotSeconds):
		return err
	}
	return &decodeError{msg: "not a token response", err: err}
}
