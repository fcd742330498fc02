// The JSON bodies of flava serve's routes (README "flava serve"; GET /openapi.json describes the same).
// Images are base64 JPEG or PNG strings (a data: URL prefix is accepted); the server never fetches URLs.
import Foundation

public struct EmbedRequest: Codable, Sendable {
    public var texts: [String]?
    public var images: [String]?
    public init(texts: [String]? = nil, images: [String]? = nil) { self.texts = texts; self.images = images }
}

public struct EmbedResponse: Codable, Sendable {
    public var textEmbeds: [[Float]]?
    public var imageEmbeds: [[Float]]?
    enum CodingKeys: String, CodingKey { case textEmbeds = "text_embeds", imageEmbeds = "image_embeds" }
}

public struct ClassifyRequest: Codable, Sendable {
    public var image: String
    public var labels: [String]
    /// Prompt templates, each containing {}; default: CLIP's.
    public var templates: [String]?
    public init(image: String, labels: [String], templates: [String]? = nil) { self.image = image; self.labels = labels; self.templates = templates }
}

public struct ClassifyResponse: Codable, Sendable {
    /// Best first.
    public var labels: [LabelScore]
}

public struct MatchRequest: Codable, Sendable {
    public var image: String
    public var texts: [String]
    public init(image: String, texts: [String]) { self.image = image; self.texts = texts }
}

public struct MatchResponse: Codable, Sendable {
    /// ITM probability of each text, in the order given.
    public var probabilities: [Double]
}

public struct SearchRequest: Codable, Sendable {
    public var text: String?
    public var image: String?
    public var k: Int?
    /// Rerank the top k by the ITM head (a text query over an image index, or an image query over a text index).
    public var rerank: Bool?
    public init(text: String? = nil, image: String? = nil, k: Int? = nil, rerank: Bool? = nil) {
        self.text = text; self.image = image; self.k = k; self.rerank = rerank
    }
}

public struct SearchResponse: Codable, Sendable {
    public var kind: String
    public var hits: [SearchHit]
}

public struct HealthResponse: Codable, Sendable {
    public var status: String
    public var model: String?
    public var precision: String?
    public var index: Int?
}

/// The OpenAPI 3.1 document of GET /openapi.json.
public enum ServeOpenAPI {
    public static func document(limits: ServeLimits) -> String {
        let err = ##"{"description": "an error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}"##
        func post(_ summary: String, _ req: String, _ res: String) -> String {
            ##"""
            {"post": {"summary": "\##(summary)", "security": [{}, {"bearer": []}],
              "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/\##(req)"}}}},
              "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/\##(res)"}}}},
                "400": \##(err), "401": \##(err), "413": \##(err), "429": \##(err), "501": \##(err), "503": \##(err)}}}
            """##
        }
        let image = ##"{"type": "string", "description": "base64 JPEG or PNG (a data: URL prefix is accepted), at most \##(limits.maxPixels) pixels"}"##
        return ##"""
        {"openapi": "3.1.0",
         "info": {"title": "flava serve", "version": "1.0.0",
                  "description": "FLAVA embeddings, zero-shot labels, image-text matching and search. Bodies up to \##(limits.maxBodyBytes) bytes, \##(limits.maxItems) items per request."},
         "paths": {
          "/v1/embed": \##(post("L2-normalized projected [CLS] embeddings of texts and images", "EmbedRequest", "EmbedResponse")),
          "/v1/classify": \##(post("Zero-shot label probabilities for one image", "ClassifyRequest", "ClassifyResponse")),
          "/v1/match": \##(post("Image-text matching probabilities (the ITM head)", "MatchRequest", "MatchResponse")),
          "/v1/search": \##(post("Top-k of the server's index by cosine similarity, optionally reranked by ITM", "SearchRequest", "SearchResponse")),
          "/health": {"get": {"summary": "200 once the model is loaded, 503 while loading or draining", "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}, "503": {"description": "loading or draining", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
          "/metrics": {"get": {"summary": "Prometheus metrics (text exposition format)", "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
          "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
         },
         "components": {
          "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "required when the server runs with --api-key-file"}},
          "schemas": {
           "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
           "EmbedRequest": {"type": "object", "properties": {"texts": {"type": "array", "items": {"type": "string"}}, "images": {"type": "array", "items": \##(image)}}},
           "EmbedResponse": {"type": "object", "properties": {"text_embeds": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}, "image_embeds": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}}},
           "ClassifyRequest": {"type": "object", "required": ["image", "labels"], "properties": {"image": \##(image), "labels": {"type": "array", "items": {"type": "string"}, "minItems": 1}, "templates": {"type": "array", "items": {"type": "string", "description": "contains {}"}}}},
           "ClassifyResponse": {"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}, "probability": {"type": "number"}}}}}},
           "MatchRequest": {"type": "object", "required": ["image", "texts"], "properties": {"image": \##(image), "texts": {"type": "array", "items": {"type": "string"}, "minItems": 1}}},
           "MatchResponse": {"type": "object", "properties": {"probabilities": {"type": "array", "items": {"type": "number"}}}},
           "SearchRequest": {"type": "object", "properties": {"text": {"type": "string"}, "image": \##(image), "k": {"type": "integer", "minimum": 1, "default": 10}, "rerank": {"type": "boolean", "default": false}}},
           "SearchResponse": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["images", "texts"]}, "hits": {"type": "array", "items": {"type": "object", "properties": {"item": {"type": "string"}, "index": {"type": "integer"}, "score": {"type": "number"}, "match_probability": {"type": "number"}}}}}},
           "Health": {"type": "object", "properties": {"status": {"type": "string"}, "model": {"type": "string"}, "precision": {"type": "string"}, "index": {"type": "integer"}}}
          }}}
        """##
    }
}
