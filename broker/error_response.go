package broker

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errorResponse is Kafka's AbstractRequest.getErrorResponse for any
// request: its response with e as the top-level error where the response
// has one, and every entry of the request (topics, partitions, groups...)
// answered e, named as the request named it. The SASL
// authenticator sends it for a request that arrives out of turn, and the
// controller for a peer that may not talk to it.
//
// It works on kmsg's generated structs by name: a response field takes
// the request field of the same name and type (Topic, Partition, TopicID,
// Group...), and a response array of structs mirrors the request array of
// the same name (Results: the request's only array, as CreateAcls'
// Creations), element by element, from each element's defaults; a
// request's list of partition ids gives one entry per partition.
// msg is the error message where the response carries one (e's
// description when empty).
func errorResponse(req kmsg.Request, e *kerr.Error, msg string) kmsg.Response {
	if msg == "" {
		msg = e.Description
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	fillError(reflect.ValueOf(req).Elem(), reflect.ValueOf(resp).Elem(), e.Code, msg)
	return resp
}

var stringPtrType = reflect.TypeOf((*string)(nil))

func fillError(src, dst reflect.Value, code int16, msg string) {
	if ec := dst.FieldByName("ErrorCode"); ec.IsValid() && ec.Kind() == reflect.Int16 {
		ec.SetInt(int64(code))
		if em := dst.FieldByName("ErrorMessage"); em.IsValid() && em.Type() == stringPtrType {
			m := msg
			em.Set(reflect.ValueOf(&m))
		}
	}
	for i := range dst.NumField() {
		f := dst.Type().Field(i)
		if !f.IsExported() || f.Name == "UnknownTags" || f.Name == "ErrorCode" || f.Name == "ErrorMessage" {
			continue
		}
		df := dst.Field(i)
		sf := src.FieldByName(f.Name)
		if !sf.IsValid() && f.Name == "Results" {
			sf = onlyStructArray(src)
		}
		if !sf.IsValid() {
			continue
		}
		switch {
		case df.Kind() == reflect.Slice && sf.Kind() == reflect.Slice &&
			df.Type().Elem().Kind() == reflect.Struct && sf.Type().Elem().Kind() == reflect.Struct:
			out := reflect.MakeSlice(df.Type(), sf.Len(), sf.Len())
			for j := range sf.Len() {
				el := out.Index(j)
				if d, ok := el.Addr().Interface().(interface{ Default() }); ok {
					d.Default()
				}
				fillError(sf.Index(j), el, code, msg)
			}
			df.Set(out)
		case df.Kind() == reflect.Slice && df.Type().Elem().Kind() == reflect.Struct &&
			sf.Kind() == reflect.Slice && sf.Type().Elem().Kind() == reflect.Int32:
			// A list of partition ids (WriteTxnMarkers, ElectLeaders)
			// answered one entry per partition.
			out := reflect.MakeSlice(df.Type(), sf.Len(), sf.Len())
			for j := range sf.Len() {
				el := out.Index(j)
				if d, ok := el.Addr().Interface().(interface{ Default() }); ok {
					d.Default()
				}
				if p := el.FieldByName("Partition"); p.IsValid() && p.Kind() == reflect.Int32 {
					p.Set(sf.Index(j))
				}
				fillError(reflect.New(reflect.TypeOf(struct{}{})).Elem(), el, code, msg)
			}
			df.Set(out)
		case df.Type() == sf.Type() && df.Kind() != reflect.Slice && df.Kind() != reflect.Struct:
			df.Set(sf)
		}
	}
}

// onlyStructArray is v's only array of structs (CreateAcls' Creations,
// which its response answers as Results), else an invalid Value.
func onlyStructArray(v reflect.Value) reflect.Value {
	var found reflect.Value
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
			if found.IsValid() {
				return reflect.Value{}
			}
			found = f
		}
	}
	return found
}
