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
// authenticator sends it for a request that arrives out of turn, the
// controller for a peer that may not talk to it, and the authorizer for a
// request it refuses as a whole.
//
// It works on kmsg's generated structs by name: a response field takes
// the request field of the same name and type (Topic, Partition, TopicID,
// Group...; a topic name into a nullable one), and a response array of
// structs mirrors the request array of the same name (Results: the
// request's only array, as CreateAcls' Creations), element by element,
// from each element's defaults and then Kafka's (errorDefaults); a
// request's list of partition ids gives one entry per partition.
// msg is the error message where the response carries one (Kafka's
// message for e when empty).
func errorResponse(req kmsg.Request, e *kerr.Error, msg string) kmsg.Response {
	if msg == "" {
		msg = kafkaMessage(e)
	}
	resp := errorEntries(req, e, &msg)
	// Where getErrorResponse gives the top-level error alone.
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		if r.Version >= 13 {
			r.Topics = nil
		}
	case *kmsg.OffsetFetchResponse:
		if r.Version >= 2 {
			r.Topics = nil
			for i := range r.Groups {
				r.Groups[i].Topics = nil
			}
		}
	case *kmsg.OffsetDeleteResponse:
		r.Topics = nil
	case *kmsg.AlterShareGroupOffsetsResponse:
		r.Topics = nil
	case *kmsg.DeleteShareGroupOffsetsResponse:
		r.Topics = nil
	}
	return resp
}

// topicsDenied is KafkaApis' answer for the topics of req, a request
// holding only topics the principal may not use, to be appended to the
// handler's answer for the others: every entry TOPIC_AUTHORIZATION_FAILED
// as errorResponse fills it, with msg as the error message where the
// response has one (nil: none, as Kafka's partitionResponse builders).
func topicsDenied[R kmsg.Response](req kmsg.Request, msg *string) R {
	return errorEntries(req, kerr.TopicAuthorizationFailed, msg).(R)
}

// topicDeniedMsg is Kafka's message for TOPIC_AUTHORIZATION_FAILED
// (ApiError's), for the APIs that send one.
var topicDeniedMsg = kmsg.StringPtr(kafkaMessage(kerr.TopicAuthorizationFailed))

// kafkaMessage is Kafka's Errors message for e: kerr's description is the
// Java client's exception text where that differs.
func kafkaMessage(e *kerr.Error) string {
	switch e {
	case kerr.TopicAuthorizationFailed:
		return "Topic authorization failed."
	case kerr.GroupAuthorizationFailed:
		return "Group authorization failed."
	case kerr.TransactionalIDAuthorizationFailed:
		return "Transactional Id authorization failed."
	}
	return e.Description
}

func errorEntries(req kmsg.Request, e *kerr.Error, msg *string) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	fillError(reflect.ValueOf(req).Elem(), reflect.ValueOf(resp).Elem(), e.Code, msg)
	return resp
}

// errorDefaults sets the fields of an error answer that Kafka gives a
// value other than the schema's default, or than the request's field of
// the same name, which fillError copied.
func errorDefaults(v any) {
	switch v := v.(type) {
	case *kmsg.ProduceResponseTopicPartition:
		v.BaseOffset = -1 // PartitionResponse(error): INVALID_OFFSET
	case *kmsg.FetchResponseTopicPartition:
		// FetchResponse.partitionResponse: INVALID_HIGH_WATERMARK; the
		// request's LogStartOffset is a follower's own.
		v.HighWatermark, v.LogStartOffset = -1, -1
	case *kmsg.ListOffsetsResponseTopicPartition:
		v.Timestamp = -1 // UNKNOWN_TIMESTAMP, not the one asked for
	case *kmsg.OffsetForLeaderEpochResponseTopicPartition:
		v.LeaderEpoch = -1 // UNDEFINED_EPOCH, not the one asked for
	case *kmsg.DeleteRecordsResponseTopicPartition:
		v.LowWatermark = -1 // INVALID_LOW_WATERMARK
	case *kmsg.OffsetFetchResponseTopicPartition:
		v.Offset, v.Metadata = -1, kmsg.StringPtr("") // INVALID_OFFSET, NO_METADATA
	case *kmsg.OffsetFetchResponseGroupTopicPartition:
		v.Offset, v.Metadata = -1, kmsg.StringPtr("")
	case *kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition:
		v.StartOffset = -1 // KafkaApis' answer for a denied topic
	case *kmsg.CreateTopicsResponseTopic:
		// CreatableTopicResult's defaults, not the request's.
		v.NumPartitions, v.ReplicationFactor, v.Configs = -1, -1, nil
	}
}

var stringPtrType = reflect.TypeOf((*string)(nil))

func fillError(src, dst reflect.Value, code int16, msg *string) {
	if ec := dst.FieldByName("ErrorCode"); ec.IsValid() && ec.Kind() == reflect.Int16 {
		ec.SetInt(int64(code))
		if em := dst.FieldByName("ErrorMessage"); em.IsValid() && em.Type() == stringPtrType && msg != nil {
			m := *msg
			em.Set(reflect.ValueOf(&m))
		}
	}
	defer errorDefaults(dst.Addr().Interface())
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
		case f.Name == "Topic" && df.Type() == stringPtrType && sf.Kind() == reflect.String:
			// A topic's name into a nullable one (DescribeTopicPartitions);
			// not a member id, which Kafka's error answers leave null.
			s := sf.String()
			df.Set(reflect.ValueOf(&s))
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
